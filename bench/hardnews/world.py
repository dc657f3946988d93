"""The made-up world of the hard news set: towns, people, companies, teams and the calendar."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

BASE = date(2026, 9, 7)  # a Monday; the set covers seven weeks from here
DAYS = 49

FIRST = [
    "Mira",
    "Anselm",
    "Tove",
    "Idris",
    "Halla",
    "Corin",
    "Maren",
    "Oswin",
    "Petra",
    "Lucan",
    "Signe",
    "Bram",
    "Ysolde",
    "Teodor",
    "Nadia",
    "Ewan",
    "Liss",
    "Rafe",
    "Oona",
    "Kasimir",
    "Hedda",
    "Jory",
    "Ilse",
    "Matthis",
    "Fenna",
    "Aurel",
    "Britt",
    "Dario",
    "Elska",
    "Gideon",
    "Rosalind",
    "Emeric",
    "Thea",
    "Vidar",
    "Solveig",
    "Niall",
    "Agathe",
    "Leopold",
    "Marisol",
    "Tamsin",
    "Ruben",
    "Isaura",
    "Konrad",
    "Wilma",
    "Esben",
    "Cressida",
    "Milo",
    "Annika",
    "Fabian",
    "Greer",
    "Henrik",
    "Juno",
    "Casimir",
    "Liesel",
    "Pim",
    "Rowena",
    "Stellan",
    "Ottilie",
    "Benedikt",
    "Zara",
]
LAST = [
    "Castell",
    "Vornholt",
    "Achterberg",
    "Quillon",
    "Marrable",
    "Sedgwick",
    "Ashcombe",
    "Lindqvist",
    "Farrant",
    "Obuya",
    "Penhallow",
    "Trevane",
    "Halloran",
    "Brisk",
    "Kettleby",
    "Dunmore",
    "Ravensworth",
    "Ollerenshaw",
    "Tasker",
    "Whitcombe",
    "Malvern",
    "Ebbesen",
    "Garroway",
    "Lisle",
    "Northam",
    "Pelham",
    "Rookwood",
    "Sallow",
    "Tennick",
    "Ulverston",
    "Varga",
    "Wetherall",
    "Yardley",
    "Zeller",
    "Amberley",
    "Brannagh",
    "Corrigan",
    "Dacre",
    "Elphick",
    "Fairweather",
    "Goring",
    "Hesketh",
    "Ingleby",
    "Jessop",
    "Kinnaird",
    "Lockridge",
    "Mabry",
    "Nettlefold",
    "Orme",
    "Prideaux",
    "Quarles",
    "Renshaw",
    "Stainforth",
    "Thursby",
    "Umfreville",
    "Vane",
    "Wakelin",
    "Yelland",
]


@dataclass
class Town:
    name: str
    region: str
    population: str
    river: str
    known_for: str
    founded: str
    seats: int
    hall: str


TOWNS = [
    ("Brennick", "the Calder Vale", "Osk", "its slate quarries"),
    ("Ostervale", "the Calder Vale", "Tamber", "its Saturday cattle market"),
    ("Caddenby", "the Lowmarsh", "Wend", "its ropeworks and canal basin"),
    ("Fennmoor", "the Lowmarsh", "Lisk", "its peat fields and bird reserve"),
    ("Quillhaven", "the Osk Peninsula", "Quill", "its fishing fleet"),
    ("Dunmarrow", "the Osk Peninsula", "Marrow", "its lighthouse and sea caves"),
    ("Larchwick", "North Tessary", "Larch", "its paper mill"),
    ("Tessary Bay", "North Tessary", "Tess", "its ferry port"),
    ("Wynhallow", "the Calder Vale", "Wyn", "its cider orchards"),
    ("Rookmere", "the Lowmarsh", "Rook", "its glassworks"),
    ("Halvering", "North Tessary", "Halve", "its railway workshops"),
    ("Saltreach", "the Osk Peninsula", "Salt", "its salt pans and boatyards"),
    ("Mossbury", "the Calder Vale", "Moss", "its wool exchange"),
    ("Pennock", "North Tessary", "Penn", "its brewery and market hall"),
]

COMPANY_STEMS = [
    "Corvale",
    "Tamsk",
    "Orlin",
    "Vestry",
    "Halden",
    "Quorra",
    "Ashgrove",
    "Pellan",
    "Morrow",
    "Kestrel",
    "Brightwater",
    "Fenwick",
    "Ostrand",
    "Calloway",
    "Dravin",
    "Larkspur",
    "Menlow",
    "Norrath",
    "Penderel",
    "Rellick",
    "Sunderby",
    "Thorne",
    "Valmira",
    "Wexley",
    "Yarrow",
    "Ember",
    "Galloway",
    "Hestia",
    "Irvane",
]
SECTORS = {
    "logistics": ["Logistics", "Freight", "Haulage", "Distribution"],
    "manufacturing": ["Engineering", "Components", "Industries", "Metalworks"],
    "food": ["Foods", "Dairies", "Bakeries", "Provisions"],
    "tech": ["Systems", "Devices", "Electronics", "Robotics"],
    "retail": ["Stores", "Home", "Outfitters", "Markets"],
    "construction": ["Construction", "Builders", "Civil Works", "Contracting"],
}
TEAM_NAMES = [
    "Rovers",
    "Athletic",
    "Wanderers",
    "United",
    "Harriers",
    "Mariners",
    "Rangers",
    "Albion",
    "Town",
    "Corinthians",
    "Saints",
    "Pilgrims",
]
BANDS = [
    "The Lantern Years",
    "Moth Parade",
    "Kelpie Choir",
    "The Salt Ghosts",
    "Velvet Hinterland",
    "Orla Vane and the Tides",
    "Juniper Static",
    "The Pale Ferrymen",
    "Copper Sundays",
    "Hollow Anthem",
    "The Weir Sisters",
    "Northern Gannet",
    "Lamplight Union",
    "The Cinder Twins",
    "Glass Orchard",
    "Marsh Radio",
]
UNIONS = [
    "the Transport and Depot Workers' Union",
    "the United Makers' Federation",
    "the Allied Shopfloor Union",
    "the Warehouse and Drivers' Guild",
    "the Lowmarsh Workers' Alliance",
]


def day_date(day: int) -> date:
    return BASE + timedelta(days=day)


def date_text(day: int) -> str:
    """A date as every article writes it ("October 14"), so an answer string is found verbatim."""
    d = day_date(day)
    return f"{d:%B} {d.day}"


def weekday(day: int) -> str:
    return f"{day_date(day):%A}"


def money(amount_tenths: int) -> str:
    """An amount in millions of crowns, written with one decimal ("4.2 million crowns")."""
    return f"{amount_tenths // 10}.{amount_tenths % 10} million crowns"


def number(n: int) -> str:
    return f"{n:,}"


class World:
    """Draws unique names from the pools with one seeded generator."""

    def __init__(self, r: random.Random):
        self.r = r
        self.towns = [
            Town(
                name,
                region,
                number(r.randrange(6000, 60000, 10)),
                river,
                known,
                str(r.randint(1180, 1820)),
                r.choice([11, 13, 15, 17, 21]),
                r.choice(["the old corn exchange", "the town hall on Market Row", "the guildhall", "the civic centre"]),
            )
            for name, region, river, known in TOWNS
        ]
        self._people: set[str] = set()
        self._companies: set[str] = set()
        self._teams: set[str] = set()

    def town(self, exclude: tuple[str, ...] = ()) -> Town:
        return self.r.choice([t for t in self.towns if t.name not in exclude])

    def person(self) -> str:
        while True:
            name = f"{self.r.choice(FIRST)} {self.r.choice(LAST)}"
            if name not in self._people:
                self._people.add(name)
                return name

    def company(self, sector: str) -> str:
        while True:
            name = f"{self.r.choice(COMPANY_STEMS)} {self.r.choice(SECTORS[sector])}"
            stem = name.split()[0]
            if name not in self._companies and sum(c.startswith(stem + " ") for c in sorted(self._companies)) < 2:
                self._companies.add(name)
                return name

    def team(self, town: Town) -> str:
        while True:
            name = f"{town.name} {self.r.choice(TEAM_NAMES)}"
            if name not in self._teams:
                self._teams.add(name)
                return name


def _month_offsets() -> dict[str, int]:
    """Month name -> day index of the day before its 1st (September 2026 to August 2027), for date arithmetic."""
    out = {}
    for i in range(12):
        month, year = (9 + i - 1) % 12 + 1, 2026 + (8 + i) // 12
        first = date(year, month, 1)
        out[f"{first:%B}"] = (first - BASE).days - 1
    return out


MONTHS_DAYS = _month_offsets()
