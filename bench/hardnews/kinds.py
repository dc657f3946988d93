"""Event kinds of the hard news set: their facts, how they change, and the sentences and questions about them.

Each kind draws an event (names, fact values, planned updates) and holds templates: headlines, ledes,
one sentence per fact (several wordings each), follow-up ledes per changed fact, quote pools and
user-style questions. Fact values are written the same way in every wording, so an answer string is
found verbatim in its articles.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .world import UNIONS, World, date_text, money, number

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


@dataclass
class Draw:
    """What a kind draws for one event: names (ctx), first fact values, fact kinds and planned changes."""

    ctx: dict
    values: dict[str, str]
    kinds: dict[str, str]
    changes: list[tuple[dict[str, str], str]] = field(default_factory=list)


def _bump(r: random.Random, n: int, lo: float, hi: float, step: int = 5) -> int:
    """n moved up or down by a share in [lo, hi], rounded to step, never equal to n."""
    sign = 1 if r.random() < 0.65 else -1
    out = max(step, round(n * (1 + sign * r.uniform(lo, hi)) / step) * step)
    return out if out != n else n + step


# ---------------------------------------------------------------- layoffs
def draw_layoffs(r: random.Random, w: World, day: int, used: list[str]) -> Draw:
    """Job cuts; a third of them by a company that already cut jobs elsewhere (same firm, other town)."""
    earlier = [u.split("|") for u in used]
    if earlier and r.random() < 0.35:
        company, sector, _ = r.choice(earlier)
        town = w.town(exclude=tuple(t for c, _, t in earlier if c == company))
    else:
        sector = r.choice(["logistics", "manufacturing", "food", "retail"])
        company, town = w.company(sector), w.town()
    used.append(f"{company}|{sector}|{town.name}")
    site = {"logistics": "depot", "manufacturing": "plant", "food": "factory", "retail": "distribution centre"}
    jobs = r.randrange(40, 520, 5)
    values = {
        "jobs": number(jobs),
        "workforce": number(jobs + r.randrange(90, 1400, 10)),
        "effective": date_text(day + r.randint(28, 80)),
        "union": r.choice(UNIONS),
    }
    d = Draw(
        {"company": company, "site": site.get(sector, "site"), "town": town, "ceo": w.person(), "rep": w.person()},
        values,
        {"jobs": "jobs", "workforce": "workforce", "effective": "date", "union": "union"},
    )
    roll = r.random()
    if roll < 0.55:
        new = _bump(r, jobs, 0.15, 0.45)
        why = (
            r.choice(["after a review of its order book", "after losing a large contract", "as orders kept falling"])
            if new > jobs
            else r.choice(["after talks with the union", "after some staff accepted transfers", "after a consultation"])
        )
        d.changes.append(({"jobs": number(new)}, why))
        if r.random() < 0.25:
            d.changes.append(({"jobs": number(_bump(r, new, 0.1, 0.3))}, "after a second round of talks"))
    elif roll < 0.75:
        d.changes.append(
            ({"effective": date_text(day + r.randint(85, 130))}, "to give staff more time to find new roles")
        )
    return d


LAYOFFS = {
    "topic": "economy",
    "headline": [
        "{company} to cut {jobs} jobs at {town} {site}",
        "{jobs} jobs to go at {company}'s {town} {site}",
        "{town} {site} to shed {jobs} jobs, {company} says",
        "Blow for {town} as {company} plans {jobs} job cuts",
    ],
    "lede": [
        "{company} will cut {jobs} jobs at its {site} in {town}, the company said on {weekday}.",
        "{company} plans to shed {jobs} jobs at its {town} {site}, it announced on {weekday}, in a blow to one of "
        "the largest employers in {region}.",
        "{jobs} workers at {company}'s {site} in {town} are to lose their jobs, the company said on {weekday}.",
    ],
    "facts": [
        ["In all, {jobs} posts will go.", "The plan affects {jobs} jobs.", "A total of {jobs} roles are to be cut."],
        [
            "The {site} employs {workforce} people, making it one of the biggest workplaces in {town}.",
            "Some {workforce} people currently work at the site.",
            "The site has a workforce of {workforce}, according to the company.",
        ],
        [
            "The cuts are due to take effect on {effective}, according to a letter sent to staff.",
            "{company} said the reductions would be completed by {effective}.",
            "Staff were told the job losses would take effect from {effective}.",
        ],
        [
            "Workers at the site are represented by {union}, which said it would seek urgent talks.",
            "{union}, which represents staff at the {site}, called the decision a hammer blow.",
            "Staff are members of {union}, which has asked for a meeting with management.",
        ],
        [
            "The company blamed falling orders and higher energy costs.",
            "{company} pointed to weaker demand and rising costs.",
            "Managers cited a drop in orders and a steep rise in energy bills.",
        ],
    ],
    "change": {
        "jobs": {
            "headline": [
                "{company} now to cut {jobs} jobs at {town} {site}",
                "{company} revises {town} job cuts to {jobs}",
                "Job cuts at {company} {town} {site} revised to {jobs}",
            ],
            "lede": [
                "{company} will now cut {jobs} jobs at its {town} {site}, {reason}, the company said on {weekday}.",
                "{company} has revised the number of job losses at its {site} in {town} to {jobs}, {reason}.",
                "The number of jobs to go at {company}'s {town} {site} now stands at {jobs}, {reason}.",
            ],
            "recap": [
                "The company had first put the figure at {old_jobs}.",
                "When the cuts were first announced, the figure given was {old_jobs}.",
                "",
            ],
        },
        "effective": {
            "headline": [
                "{company} moves date of {town} job cuts",
                "{company} {town} cuts now to take effect {effective}",
            ],
            "lede": [
                "The job losses at {company}'s {site} in {town} will now take effect on {effective}, {reason}.",
                "{company} has pushed back the date of the job cuts at its {town} {site} to {effective}, {reason}.",
            ],
            "recap": ["The cuts had originally been due on {old_effective}.", ""],
        },
    },
    "official": ("{ceo}", "chief executive of {company}"),
    "official_lines": [
        "This was an incredibly difficult decision and not one we took lightly.",
        "We will do everything we can to support colleagues through this period.",
        "The market has changed and we have to change with it.",
        "We remain committed to {town} and to the {site} in the long term.",
        "We have looked at every alternative before reaching this point.",
        "Our priority now is to treat everyone affected with fairness and respect.",
    ],
    "critic": ("{rep}", "a representative of {union}"),
    "critic_lines": [
        "Our members have given years of service and deserve better than this.",
        "We will be examining the company's figures very closely.",
        "This is a devastating day for the workforce and for the town.",
        "The company has not made the case for cuts on this scale.",
        "We will fight for every job at the site.",
        "Nobody saw this coming, least of all the people on the shop floor.",
    ],
    "questions": {
        "jobs": [
            "How many jobs will {company} cut at its {town} {site}?",
            "How many workers at {company}'s {site} in {town} are set to lose their jobs?",
            "What is the number of job losses planned at the {company} {site} in {town}?",
        ],
        "workforce": [
            "How many people work at {company}'s {town} {site}?",
            "How big is the workforce at the {company} {site} in {town}?",
        ],
        "effective": [
            "When will the job cuts at {company}'s {town} {site} take effect?",
            "From what date do the job losses at the {company} {site} in {town} apply?",
        ],
        "union": ["Which union represents the workers at {company}'s {town} {site}?"],
    },
    # Wordings only the extra questions use: in "questions" they would change the first questions' draws.
    "more_questions": {
        "jobs": ["How many posts are going at the {company} {site} in {town}?"],
        "workforce": ["How many staff does {company} employ at its {site} in {town}?"],
        "effective": ["When do the {company} job cuts in {town} come into force?"],
        "union": ["Which union speaks for staff at the {company} {site} in {town}?"],
    },
}


# ---------------------------------------------------------------- closures
STRUCTURES = [
    "Hallam Street bridge",
    "Mill Lane bridge",
    "Kingsferry Bridge",
    "Old Quay swing bridge",
    "Tanner's Row viaduct",
    "Station Road bridge",
    "Abbey Weir bridge",
    "Northgate flyover",
    "Ferry Lane bridge",
    "Cooper's Bridge",
    "Marsh Road viaduct",
    "Church Street bridge",
    "Eastgate bridge",
    "Victoria footbridge",
    "Lock Lane bridge",
]


def draw_closure(r: random.Random, w: World, day: int, used: list[str]) -> Draw:
    name = r.choice([s for s in STRUCTURES if s not in used])
    used.append(name)
    start = day + r.randint(4, 24)
    weeks = r.randint(3, 18)
    d = Draw(
        {"name": name, "town": w.town(), "official": w.person(), "trader": w.person()},
        {
            "start": date_text(start),
            "weeks": f"{weeks} weeks",
            "reopen": date_text(start + 7 * weeks),
            "cost": money(r.randint(4, 95)),
            "contractor": w.company("construction"),
        },
        {"start": "date", "weeks": "weeks", "reopen": "date", "cost": "money", "contractor": "contractor"},
    )
    roll = r.random()
    if roll < 0.55:
        extra = r.randint(2, 9)
        why = r.choice(
            [
                "after engineers found more corrosion than expected",
                "because of a delay in steel deliveries",
                "after bats were found roosting under the arches",
                "because a utility main must be moved",
            ]
        )
        d.changes.append(({"weeks": f"{weeks + extra} weeks", "reopen": date_text(start + 7 * (weeks + extra))}, why))
    elif roll < 0.75:
        shift = r.randint(7, 16)
        d.changes.append(
            (
                {"start": date_text(start + shift), "reopen": date_text(start + shift + 7 * weeks)},
                "to avoid clashing with other roadworks in the area",
            )
        )
    return d


CLOSURE = {
    "topic": "transport",
    "headline": [
        "{name} in {town} to close for {weeks}",
        "{town}'s {name} shut for {weeks} of repairs",
        "Repairs to close {name} from {start}",
        "{weeks} of disruption ahead as {town} bridge closes",
    ],
    "lede": [
        "The {name} in {town} will close to traffic for {weeks} from {start} while repairs are carried out, "
        "the council said on {weekday}.",
        "Drivers in {town} face {weeks} of diversions after the council announced on {weekday} that the {name} "
        "will shut on {start}.",
        "The {name}, one of the main crossings in {town}, is to close on {start} for {weeks} of repairs.",
    ],
    "facts": [
        [
            "The crossing is expected to reopen on {reopen}.",
            "If the work goes to plan, it will reopen on {reopen}.",
            "Officials said traffic should be able to use it again from {reopen}.",
        ],
        [
            "The work is expected to cost {cost}.",
            "The repairs will cost {cost}, according to council papers.",
            "The council has set aside {cost} for the job.",
        ],
        [
            "The contract has gone to {contractor}.",
            "{contractor} will carry out the work.",
            "The work has been awarded to {contractor}.",
        ],
        [
            "The closure begins on {start} and is planned to last {weeks}.",
            "The bridge shuts on {start} for a planned {weeks}.",
        ],
    ],
    "change": {
        "weeks": {
            "headline": [
                "{name} closure extended to {weeks}",
                "{town} bridge to stay shut until {reopen}",
                "Delay: {name} now closed for {weeks}",
            ],
            "lede": [
                "The closure of the {name} in {town} will now last {weeks}, {reason}, the council said on {weekday}.",
                "Repairs to the {name} in {town} will take {weeks}, longer than planned, {reason}.",
                "The {name} in {town} will now not reopen until {reopen}, {reason}.",
            ],
            "recap": [
                "The council had originally said the work would take {old_weeks}.",
                "It had been due to reopen on {old_reopen}.",
                "",
            ],
        },
        "start": {
            "headline": ["{name} closure moved to {start}", "{town} bridge works pushed back"],
            "lede": [
                "The closure of the {name} in {town} will now begin on {start}, {reason}.",
                "Work on the {name} in {town} has been put back to {start}, {reason}, the council said.",
            ],
            "recap": ["The bridge had been due to close on {old_start}.", ""],
        },
    },
    "official": ("{official}", "the council's head of highways"),
    "official_lines": [
        "We know this will be frustrating for people and we are sorry for the disruption.",
        "The bridge has to be repaired now if we want it to last another fifty years.",
        "We have planned the diversions carefully with the bus companies.",
        "Safety has to come first and the engineers have been very clear.",
        "We will keep residents informed at every stage of the work.",
        "There was simply no way to do this work with traffic running.",
    ],
    "critic": ("{trader}", "who runs a shop near the bridge"),
    "critic_lines": [
        "Nobody has thought about what this does to small businesses.",
        "We were told about this with hardly any notice.",
        "Our takings fell by a third the last time the road was shut.",
        "I hope they have a plan for the evenings and the weekends.",
        "The council should have done this years ago when it was cheaper.",
        "People will simply go and shop somewhere else.",
    ],
    "questions": {
        "weeks": [
            "How long will the {name} in {town} be closed?",
            "For how many weeks is the {name} in {town} shut for repairs?",
        ],
        "reopen": [
            "When is the {name} in {town} due to reopen?",
            "On what date should traffic be able to use the {name} in {town} again?",
        ],
        "start": [
            "When does the closure of the {name} in {town} begin?",
            "From what date is the {name} in {town} closed?",
        ],
        "cost": ["How much will the repairs to the {name} in {town} cost?"],
        "contractor": ["Which firm is carrying out the work on the {name} in {town}?"],
    },
    # Wordings only the extra questions use: in "questions" they would change the first questions' draws.
    "more_questions": {
        "weeks": ["How many weeks will the closure of the {name} in {town} last?"],
        "reopen": ["When will the {name} in {town} open again?"],
        "start": ["On what date does the {name} in {town} close?"],
        "cost": ["What is the bill for the repair work on the {name} in {town}?"],
        "contractor": ["Who is the contractor for the repairs to the {name} in {town}?"],
    },
}


# ---------------------------------------------------------------- elections
PARTIES = [
    "the Civic Alliance",
    "the Harbour Party",
    "the Independent Ratepayers",
    "the Green Lowland League",
    "the Workers' Forum",
    "the Vale Liberals",
]


def draw_election(r: random.Random, w: World, day: int, used: list[str]) -> Draw:
    town = w.town(exclude=tuple(used))
    used.append(town.name)
    a, b, c = w.person(), w.person(), w.person()
    pa, pb, pc = r.sample(PARTIES, 3)
    margin = r.randrange(40, 1900)
    d = Draw(
        {"town": town, "third": c, "party_a": pa, "party_b": pb, "party_c": pc, "returning": w.person()},
        {
            "winner": a,
            "runner_up": b,
            "margin": f"{number(margin)} votes",
            "turnout": f"{r.randint(24, 71)} percent",
        },
        {"winner": "candidate", "runner_up": "candidate", "margin": "margin", "turnout": "percent"},
    )
    roll = r.random()
    if roll < 0.25:
        d.changes.append(
            ({"winner": b, "runner_up": a, "margin": f"{r.randrange(3, 60)} votes"}, "after a full recount")
        )
    elif roll < 0.5:
        d.changes.append(
            (
                {"margin": f"{number(_bump(r, margin, 0.2, 0.6, 1))} votes"},
                "after a batch of postal votes was recounted",
            )
        )
    return d


ELECTION = {
    "topic": "politics",
    "headline": [
        "{winner} elected mayor of {town}",
        "{winner} wins {town} mayoral race",
        "{town} picks {winner} as mayor by {margin}",
        "Narrow night in {town} as {winner} takes mayor's office",
    ],
    "lede": [
        "{winner} has been elected mayor of {town}, beating {runner_up} by {margin}, officials said on {weekday}.",
        "Voters in {town} have chosen {winner} as their new mayor, with a margin of {margin} over {runner_up}.",
        "{winner} won the race to become mayor of {town}, finishing {margin} ahead of {runner_up}.",
    ],
    "facts": [
        [
            "The winning margin was {margin}.",
            "{winner} finished {margin} clear.",
            "The gap between the top two was {margin}.",
        ],
        [
            "Turnout was {turnout}, the returning officer said.",
            "Some {turnout} of registered voters cast a ballot.",
            "The returning officer put turnout at {turnout}.",
        ],
        [
            "{runner_up} finished second, with {third} of {party_c} a distant third.",
            "{third}, standing for {party_c}, came third behind {runner_up}.",
            "Behind the runner-up, {runner_up}, {third} came third.",
        ],
        [
            "{winner} stood for {party_a}.",
            "{winner}, the {party_a} candidate, takes office next month.",
            "{winner} ran on the {party_a} ticket.",
        ],
    ],
    "change": {
        "winner": {
            "headline": [
                "Recount hands {town} mayoralty to {winner}",
                "{winner} declared {town} mayor after recount",
                "{town} result overturned: {winner} wins by {margin}",
            ],
            "lede": [
                "{winner} has been declared mayor of {town}, {reason}, reversing the result announced earlier.",
                "The {town} mayoral election has been won by {winner}, by {margin}, {reason}.",
                "{winner} is the new mayor of {town} {reason} overturned the first count.",
            ],
            "recap": [
                "{old_winner} had first been declared the winner by {old_margin}.",
                "The first count had put {old_winner} ahead.",
                "",
            ],
        },
        "margin": {
            "headline": ["{town} recount confirms {winner}, margin now {margin}", "{winner}'s {town} margin revised"],
            "lede": [
                "{winner} remains mayor of {town}, but the winning margin is now {margin}, {reason}.",
                "A recount in {town} has confirmed {winner} as mayor, with a revised margin of {margin}, {reason}.",
            ],
            "recap": ["The margin had first been given as {old_margin}.", ""],
        },
    },
    "official": ("{winner}", "the new mayor"),
    "official_lines": [
        "I will be a mayor for the whole town, not just for those who voted for me.",
        "The first job is to fix the roads and get the library open on Saturdays again.",
        "I am humbled by the trust people have placed in me.",
        "We ran a positive campaign and I think that showed.",
        "There is a lot of work to do and I want to start on Monday.",
        "I want to thank every volunteer who knocked on doors in the rain.",
    ],
    "critic": ("{returning}", "the returning officer"),
    "critic_lines": [
        "The count was conducted carefully and every ballot was checked.",
        "Candidates were given every opportunity to observe the process.",
        "We are grateful to the staff who worked through the night.",
        "Any request for a recount is considered on its merits.",
        "Postal votes were verified in the usual way.",
        "The figures will be published in full on the council's website.",
    ],
    "questions": {
        "winner": ["Who won the mayoral election in {town}?", "Who is the new mayor of {town}?"],
        "runner_up": ["Who came second in the race for mayor of {town}?"],
        "margin": [
            "By how many votes was the {town} mayoral election won?",
            "What was the winning margin in the {town} mayoral race?",
        ],
        "turnout": ["What was the turnout in the {town} mayoral election?"],
    },
    # Wordings only the extra questions use: in "questions" they would change the first questions' draws.
    "more_questions": {
        "winner": ["Which candidate won the race for mayor of {town}?"],
        "runner_up": ["Who was the runner-up in the {town} mayoral election?"],
        "margin": ["How many votes separated the top two candidates for mayor of {town}?"],
        "turnout": ["What share of registered voters cast a ballot in the {town} mayoral election?"],
    },
}


# ---------------------------------------------------------------- football matches
CUPS = ["the Calder Cup", "the Lowmarsh Shield", "the Tessary League", "the Peninsula Trophy"]


def draw_match(r: random.Random, w: World, day: int, used: list[str]) -> Draw:
    home_town = w.town()
    home, away = w.team(home_town), w.team(w.town(exclude=(home_town.name,)))
    wg = r.randint(1, 4)
    lg = r.randint(0, wg - 1)
    winner, loser = (home, away) if r.random() < 0.55 else (away, home)
    d = Draw(
        {
            "home": home,
            "away": away,
            "town": home_town,
            "cup": r.choice(CUPS),
            "manager": w.person(),
            "rival_manager": w.person(),
            "ground": f"{r.choice(['Quarry', 'Riverside', 'Mill', 'Chapel', 'Kiln'])} Park",
        },
        {
            "winner": winner,
            "score": f"{wg}-{lg}",
            "scorer": w.person(),
            "crowd": number(r.randrange(700, 9800, 10)),
        },
        {"winner": "team", "score": "score", "scorer": "player", "crowd": "crowd"},
    )
    d.ctx["loser"] = loser
    if r.random() < 0.3:
        d.changes.append(
            ({"winner": loser, "score": "3-0"}, "after the league ruled that an ineligible player took part")
        )
    return d


MATCH = {
    "topic": "sport",
    "headline": [
        "{winner} win {score} in {cup} clash",
        "{home} v {away}: {winner} take the points",
        "{score} to {winner} at {ground}",
        "{winner} edge {cup} meeting of {home} and {away}",
    ],
    "lede": [
        "{winner} won {score} when {home} hosted {away} in {cup} at {ground} on {weekday}.",
        "{home} and {away} met at {ground} in {cup} on {weekday}, and it finished {score} to {winner}.",
        "It was {winner} who came out on top, {score}, in {cup} meeting between {home} and {away} on {weekday}.",
    ],
    "facts": [
        [
            "{scorer} opened the scoring midway through the first half.",
            "The first goal came from {scorer}, who turned in a low cross.",
            "{scorer} got the opening goal after a scramble in the box.",
        ],
        [
            "The crowd at {ground} was {crowd}.",
            "A crowd of {crowd} watched the match.",
            "Attendance was given as {crowd}.",
        ],
        [
            "The result, {score} to {winner}, stands in the {cup} table.",
            "With the {score} result, {winner} move up the {cup} table.",
        ],
    ],
    "change": {
        "winner": {
            "headline": [
                "{winner} awarded {score} win over {loser_now}",
                "League hands {winner} {score} result",
                "Result overturned: {winner} given the points",
            ],
            "lede": [
                "{winner} have been awarded a {score} win in their {cup} match between {home} and {away}, {reason}.",
                "The result of the {cup} match between {home} and {away} has been changed to a {score} win for "
                "{winner}, {reason}.",
            ],
            "recap": ["{old_winner} had won the match {old_score} on the pitch.", ""],
        },
    },
    "official": ("{manager}", "the {home} manager"),
    "official_lines": [
        "I thought we started well but we lost our shape after the break.",
        "The players gave everything and I cannot ask for more than that.",
        "We have to be more clinical in front of goal.",
        "It was a proper cup tie with plenty of incident.",
        "There are lessons to learn and we will learn them this week.",
        "The supporters were magnificent from start to finish.",
    ],
    "critic": ("{rival_manager}", "the {away} manager"),
    "critic_lines": [
        "We knew it would be hard at this ground and so it proved.",
        "I was proud of the young players in the second half.",
        "Some of the decisions today were very hard to understand.",
        "We will regroup and go again on Saturday.",
        "Our travelling fans deserved something from the game.",
        "It is a long season and nobody is panicking.",
    ],
    "questions": {
        "winner": [
            "Who won the {cup} match between {home} and {away}?",
            "Which side took the result when {home} played {away}?",
        ],
        "score": ["What was the final result of {home} against {away} in {cup}?"],
        "scorer": ["Who scored first when {home} played {away}?", "Who opened the scoring in {home} against {away}?"],
        "crowd": ["How many spectators watched {home} play {away}?"],
    },
    # Wordings only the extra questions use: in "questions" they would change the first questions' draws.
    "more_questions": {
        "winner": ["Which team won when {home} met {away} in {cup}?"],
        "score": ["What was the score when {home} played {away}?"],
        "scorer": ["Who got the first goal in the {cup} game between {home} and {away}?"],
        "crowd": ["What was the attendance at {home} against {away}?"],
    },
}
