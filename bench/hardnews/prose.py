"""Background, context and quote paragraphs that make an article long, so its facts sit inside a lot of text.

A sentence is a list of variants (same meaning, different words); copies of a syndicated story pick
variants independently, which is how paraphrase is made. Synonym swaps give extra variants of
background sentences without touching names, numbers or dates.
"""

from __future__ import annotations

import random
import re

from .world import Town

SYNONYMS = [
    ("in recent years", "over the past few years", "lately"),
    ("many", "a number of", "several"),
    ("expected to", "set to", "likely to"),
    ("officials", "authorities"),
    ("residents", "locals", "people living nearby"),
    ("large", "big", "sizeable"),
    ("important", "vital", "key"),
    ("problem", "issue", "difficulty"),
    ("plans", "proposals"),
    ("announced", "confirmed", "said"),
    ("begin", "start"),
    ("however", "though", "even so"),
    ("roughly", "about", "around"),
    ("quickly", "swiftly", "fast"),
    ("worried", "concerned", "anxious"),
]


def swap(r: random.Random, sentence: str) -> str:
    """One synonym-swapped rewording of a sentence (word boundaries only, case kept for the first letter)."""
    out = sentence
    for group in SYNONYMS:
        for word in group:
            pattern = re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE)
            if pattern.search(out) and r.random() < 0.8:
                repl = r.choice([w for w in group if w != word])
                out = pattern.sub(lambda m, x=repl: x.capitalize() if m.group(0)[0].isupper() else x, out, count=1)
                break
    return out


def vary(r: random.Random, sentence: str, n: int = 3) -> list[str]:
    """The sentence plus up to n-1 synonym rewordings (duplicates dropped, order kept)."""
    out = [sentence]
    for _ in range(n - 1):
        s = swap(r, sentence)
        if s not in out:
            out.append(s)
    return out


def quote(r: random.Random, name: str, role: str, lines: list[str]) -> list[list[str]]:
    """A quote paragraph: two lines from a pool, attributed in one of several house-neutral ways."""
    q1, q2 = r.sample(lines, 2)
    comma = q1[:-1] + ","
    return [
        [
            f'"{comma}" said {name}, {role}. "{q2}"',
            f'{name}, {role}, said: "{q1} {q2}"',
            f'"{comma}" {name}, {role}, told reporters. "{q2}"',
            f'"{q1} {q2[:-1]}," said {name}, {role}.',
            f'According to {name}, {role}, "{q1[0].lower() + q1[1:]}" {name.split()[-1]} added: "{q2}"',
        ]
    ]


TOWN_LINES = [
    "{town}, a town of {pop} people on the River {river}, is best known for {known}.",
    "Founded in {founded}, {town} grew up around {known} and still trades on that name.",
    "The {river} runs through the centre of {town}, which has a population of roughly {pop}.",
    "Like much of {region}, {town} has seen its population age in recent years as younger residents move away.",
    "Local businesses in {town} rely heavily on visitors in the summer months.",
    "The town council, which has {seats} members, meets in {hall}.",
    "Many residents of {town} commute to larger towns elsewhere in {region} for work.",
    "Flooding along the {river} has been a recurring problem for low-lying streets in {town}.",
    "{town} lost its last bank branch three years ago, a sore point that still comes up at council meetings.",
    "A bypass around {town} has been discussed for decades but never funded.",
    "House prices in {town} have risen faster than the {region} average in recent years.",
    "The weekly market on the square in front of {hall} remains the busiest day in {town}.",
]

TOPIC_LINES = {
    "economy": [
        "Employers across {region} have struggled with higher energy bills and weaker orders since the spring.",
        "Regional figures published last month showed unemployment in {region} edging up for a third quarter.",
        "Economists say firms in the sector have been squeezed between rising wages and falling prices.",
        "The regional development board has promised a support package for towns hit by job losses.",
        "Unions have warned that redundancy terms in the sector have worsened in recent years.",
        "Retraining schemes run by the regional college are expected to see higher demand this winter.",
        "Several smaller suppliers depend on the site for a large share of their business.",
        "Analysts expect more consolidation in the industry as margins stay thin.",
    ],
    "transport": [
        "The route is one of the busiest in {region}, carrying thousands of vehicles on a normal weekday.",
        "Engineers first flagged corrosion on the structure during an inspection two winters ago.",
        "Bus operators have warned that diversions will add time to journeys across {region}.",
        "Shopkeepers on either side of the crossing fear a drop in passing trade while the work goes on.",
        "The regional highways department has a backlog of repairs that it says cannot be cleared without more money.",
        "Cyclists and pedestrians will be offered a temporary footbridge for part of the works.",
        "Emergency services have been consulted on the diversion routes, officials said.",
        "Similar works elsewhere in {region} ran over schedule last year, a point critics were quick to make.",
    ],
    "politics": [
        "The campaign was dominated by housing, the state of local roads and the future of the town's library.",
        "Candidates took part in three public hustings, the last of them in {hall}.",
        "Turnout in local elections across {region} has fallen steadily over the past decade.",
        "Postal votes made up a growing share of ballots, election officials said.",
        "The new council will have to set a budget under tight limits imposed by the regional assembly.",
        "Several candidates campaigned on plans to reopen the town's swimming pool.",
        "Counting took place overnight at the sports hall, with results declared in the early hours.",
        "Observers said the result would be watched closely by parties elsewhere in {region}.",
    ],
    "sport": [
        "Both sides came into the game on the back of mixed form in the {region} league.",
        "The ground was close to full on a cold, bright afternoon.",
        "The visitors had not won at the ground in more than a decade.",
        "A minute's applause was held before kick-off for a former club captain who died last month.",
        "The result leaves the league table tightly bunched with a third of the season played.",
        "The home manager made three changes from the side that lost in midweek.",
        "Supporters' groups have campaigned for lower ticket prices this season.",
        "The league's disciplinary panel has been busier than usual this autumn.",
    ],
    "tech": [
        "The market for home devices has become crowded, with many smaller firms competing on price.",
        "Supply of certain chips remains tight, manufacturers across the industry have said.",
        "The company has invested heavily in its research centre over the past two years.",
        "Reviewers who tried early units praised the battery life but questioned the software.",
        "Rival firms are expected to answer with their own models before the holiday season.",
        "Retailers in {region} said they had taken a large number of enquiries since the announcement.",
        "The firm says most components are assembled at its plant in {region}.",
        "Investors have been watching the launch closely after a weak first half for the company.",
    ],
    "institution": [
        "The post has been filled on an interim basis since the spring.",
        "The appointment panel interviewed candidates over two days, officials said.",
        "The institution has faced criticism over waiting times and staff shortages in recent years.",
        "Staff representatives said they hoped the new leadership would end a period of uncertainty.",
        "A review published last year called for changes to how the institution is run.",
        "The board said it had received a large number of applications for the role.",
        "The institution serves communities across {region}, from the coast to the hill villages.",
        "Funding for the coming year is expected to be tight, the board has warned.",
    ],
    "culture": [
        "The festival began as a single evening of music in a barn and has grown every year since.",
        "Hotels and guesthouses across {region} reported being fully booked for the weekend.",
        "Organisers added extra bus services from the railway station this year.",
        "Volunteers make up most of the festival's staff, from stewards to litter pickers.",
        "Local food stalls and a craft market run alongside the main stages.",
        "Residents living near the site have in recent years complained about late-night noise.",
        "The festival is run as a not-for-profit, with surplus money going to local causes.",
        "Weather forecasts in the week before had worried organisers, who put down extra matting.",
    ],
    "construction": [
        "Building costs across {region} have climbed sharply over the past two years.",
        "The project was first proposed almost a decade ago and has been redesigned twice.",
        "Residents were consulted on the plans at a series of drop-in sessions.",
        "The site was previously used as a car park and a council depot.",
        "Critics argued the money would be better spent repairing existing buildings.",
        "The design includes solar panels on the roof and a heat pump system.",
        "Contractors in the region have reported shortages of skilled labour.",
        "The regional assembly is paying part of the bill through its capital fund.",
    ],
    "emergency": [
        "Smoke could be seen for miles across {region}, witnesses said.",
        "Residents nearby were told to keep windows and doors closed as a precaution.",
        "Crews from three stations were called to the scene within minutes.",
        "The building was used to store packaging and pallets, the fire service said.",
        "Roads around the site were closed for much of the day.",
        "An investigation into the cause is expected to take several weeks.",
        "Neighbouring businesses were evacuated while crews worked to contain the flames.",
        "The regional fire service has warned about the risks of storing pallets close to buildings.",
    ],
}

RESIDENT_LINES = {
    "economy": [
        "I have worked there for eleven years and nobody told us a thing.",
        "This will hit the whole street.",
        "We were told the depot was safe just last year.",
        "Half of my customers work at that site.",
        "People will have to move away to find work.",
        "It feels like the town is being hollowed out.",
    ],
    "transport": [
        "It already takes me forty minutes to get to work.",
        "We knew it was coming but not for this long.",
        "The shops on this side of the river will struggle.",
        "At least they are finally fixing it.",
        "The diversion goes right past the primary school.",
        "Nobody has explained why it takes so long.",
    ],
    "politics": [
        "I just want the potholes fixed.",
        "It was closer than anyone expected.",
        "The new mayor has a lot of promises to keep.",
        "I voted for the first time this year.",
        "We need someone who will stand up for the town.",
        "Nothing changes whoever gets in.",
    ],
    "sport": [
        "That was the best game I have seen here in years.",
        "We deserved more from the second half.",
        "The referee had a difficult afternoon.",
        "The young lads showed real spirit.",
        "I have had a season ticket for thirty years.",
        "We will be back next week, win or lose.",
    ],
    "tech": [
        "I will wait for the reviews before buying one.",
        "It looks good but the price is steep.",
        "My daughter has been asking about it for weeks.",
        "I hope they have fixed the battery problems.",
        "It is nice to see something made in the region.",
        "I preordered it the day it was announced.",
    ],
    "institution": [
        "We need stability more than anything.",
        "I hope they listen to the staff this time.",
        "The last few years have been hard on everyone.",
        "It is a big job and an important one.",
        "Let us see what changes in the first year.",
        "I have heard good things about the appointment.",
    ],
    "culture": [
        "It was the best weekend of the summer.",
        "The queues for the toilets were terrible.",
        "We come every year with the whole family.",
        "The headline set was worth the ticket alone.",
        "It brings so much money into the town.",
        "The mud was something else this year.",
    ],
    "construction": [
        "We have been waiting for this for years.",
        "I just hope it is finished on time.",
        "The money would be better spent on the roads.",
        "The children need somewhere decent.",
        "The building work has been noisy but we will manage.",
        "It will change the town centre.",
    ],
    "emergency": [
        "The sky went black within minutes.",
        "We could feel the heat from across the road.",
        "The firefighters were incredible.",
        "I grabbed the dog and ran.",
        "We have been worried about that site for years.",
        "It was frightening for the children.",
    ],
}

OCCUPATIONS = [
    "a shopkeeper",
    "a retired teacher",
    "a bus driver",
    "a café owner",
    "a nurse",
    "a delivery driver",
    "a student",
    "a pensioner",
    "a mechanic",
    "a local councillor",
    "a parent of two",
    "a publican",
]

NEXT_LINES = [
    "A public meeting on the matter is planned at {hall} later this month.",
    "Further details are expected to be published on the council's website.",
    "The regional assembly is expected to discuss the issue at its next sitting.",
    "Those affected have been told they will receive letters setting out the details.",
    "Officials said they would give an update once more is known.",
    "Residents can send questions to the council by email or at the information desk in {hall}.",
]


def fill(line: str, town: Town) -> str:
    return line.format(
        town=town.name,
        region=town.region,
        pop=town.population,
        river=town.river,
        known=town.known_for,
        founded=town.founded,
        seats=town.seats,
        hall=town.hall,
    )


def town_paragraph(r: random.Random, town: Town) -> list[list[str]]:
    return [vary(r, fill(line, town)) for line in r.sample(TOWN_LINES, r.randint(2, 4))]


def context_paragraph(r: random.Random, topic: str, town: Town, used: set[int]) -> list[list[str]]:
    """Two or three topic sentences not yet used in this story."""
    free = [i for i in range(len(TOPIC_LINES[topic])) if i not in used]
    picked = r.sample(free, min(len(free), r.randint(2, 3)))
    used.update(picked)
    return [vary(r, fill(TOPIC_LINES[topic][i], town)) for i in picked]


def resident_paragraph(r: random.Random, topic: str, name: str, town: Town) -> list[list[str]]:
    occupation = r.choice(OCCUPATIONS)
    return quote(r, name, f"{occupation} from {town.name}", RESIDENT_LINES[topic])


def next_paragraph(r: random.Random, town: Town) -> list[list[str]]:
    return [vary(r, fill(line, town)) for line in r.sample(NEXT_LINES, 2)]


PAST = [
    "opened its first railway station",
    "hosted the regional games",
    "lost its cottage hospital",
    "was cut off for a week by floods",
    "celebrated the reopening of its theatre",
    "twinned with a town across the sea",
    "saw its last coal barge unload",
    "elected its first woman mayor",
    "built its covered market",
    "welcomed a royal visit to the harbour",
    "closed its tannery after a century",
    "won a national prize for its parks",
    "opened the swing bridge over the river",
    "suffered a fire that destroyed the old mill",
    "built a new secondary school",
    "lost its weekly newspaper",
    "got its first cinema",
    "opened a ring road",
    "restored its medieval walls",
    "hosted a national brass band contest",
]
STATS = [
    "{p} percent of households in {town} have at least one member working in {sector}, according to the regional "
    "statistics office.",
    "The average weekly rent in {town} rose to {rent} crowns last year.",
    "{town} has {schools} primary schools and one secondary school.",
    "The unemployment rate in {town} stood at {p2} percent in the spring.",
    "About {commuters} people travel out of {town} for work each weekday.",
    "The median age in {town} is {age}, older than the regional average.",
    "Visitor numbers to {town} reached {visitors} last summer, the tourist board said.",
    "Roughly {p} percent of the town's shops are independently owned.",
    "A survey last year found that {p2} percent of residents in {town} felt public transport was poor.",
    "The regional assembly spends about {budget} million crowns a year on services in {town}.",
]
SECTORS_TEXT = ["manufacturing", "logistics", "farming", "retail", "health care", "tourism", "fishing"]
PROFILE = [
    "{name} joined the organisation in {year} after {n} years working elsewhere in {region}.",
    "{surname}, who grew up in {town2}, started out as a trainee and worked up through the ranks.",
    "Colleagues describe {surname} as careful, direct and rarely seen without a notebook.",
    "{surname} has spoken often about the need to keep young people in {region}.",
    "Before taking on the role, {surname} spent {n} years in {town2}.",
    "{surname} sits on the board of a local charity that runs youth clubs across {region}.",
]
COMMON_LINES = [
    "Everybody is talking about it.",
    "We will have to wait and see.",
    "I am not surprised, to be honest.",
    "It is a shame for the town.",
    "Somebody should have seen this coming.",
    "I just hope they get it right.",
    "It affects all of us one way or another.",
    "My neighbours are all worried.",
    "You hear a lot of rumours but nobody knows the facts.",
    "It will be a long winter for some families.",
]


def chronicle_paragraph(r: random.Random, town: Town) -> list[list[str]]:
    years = sorted(r.sample(range(1880, 2021), 3))
    forms = [
        "In {year}, {town} {past}.",
        "{town} {past} in {year}, a moment many older residents still remember.",
        "It was in {year} that {town} {past}.",
    ]
    out = []
    for year, past in zip(years, r.sample(PAST, 3), strict=True):
        out.append([f.format(year=year, town=town.name, past=past) for f in forms])
    return out


def stats_paragraph(r: random.Random, town: Town) -> list[list[str]]:
    m = {
        "town": town.name,
        "p": r.randint(8, 45),
        "p2": r.randint(3, 38),
        "rent": r.randrange(90, 420, 5),
        "schools": r.randint(2, 9),
        "commuters": f"{r.randrange(800, 9000, 50):,}",
        "age": r.randint(36, 52),
        "visitors": f"{r.randrange(20000, 400000, 1000):,}",
        "budget": r.randint(12, 140),
        "sector": r.choice(SECTORS_TEXT),
    }
    return [vary(r, s.format(**m)) for s in r.sample(STATS, r.randint(2, 3))]


def profile_paragraph(r: random.Random, name: str, town: Town, town2: str) -> list[list[str]]:
    m = {
        "name": name,
        "surname": name.split()[-1],
        "year": r.randint(1995, 2022),
        "n": r.randint(4, 22),
        "region": town.region,
        "town2": town2,
    }
    return [vary(r, s.format(**m)) for s in r.sample(PROFILE, r.randint(2, 3))]


def common_paragraph(r: random.Random, name: str, town: Town) -> list[list[str]]:
    return quote(r, name, f"{r.choice(OCCUPATIONS)} from {town.name}", COMMON_LINES)
