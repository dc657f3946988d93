"""More event kinds: product launches, appointments, festivals, building contracts and fires."""

from __future__ import annotations

import random

from .kinds import MONTHS, Draw, _bump
from .world import BANDS, World, date_text, money, number

PRODUCT_STEMS = [
    "Lumo",
    "Vesper",
    "Arcline",
    "Pika",
    "Nimbo",
    "Tallis",
    "Corra",
    "Skylet",
    "Orrin",
    "Quill",
    "Brio",
    "Halo",
    "Fenix",
    "Zephra",
    "Kiro",
    "Mirra",
]
DEVICES = [
    "home battery",
    "e-bike",
    "smart thermostat",
    "hearing aid",
    "tablet",
    "robot mower",
    "dashcam",
    "electric scooter",
    "heat pump",
    "smartwatch",
    "air purifier",
    "solar lantern",
]


def draw_launch(r: random.Random, w: World, day: int, used: list[str]) -> Draw:
    company = w.company("tech")
    device = r.choice(DEVICES)
    product = f"{r.choice(PRODUCT_STEMS)} {r.randint(2, 9)}"
    while product in used:
        product = f"{r.choice(PRODUCT_STEMS)} {r.randint(2, 9)}"
    used.append(product)
    release = day + r.randint(10, 45)
    price = r.randrange(149, 3000, 10) - 1
    d = Draw(
        {"company": company, "device": device, "ceo": w.person(), "analyst": w.person(), "town": w.town()},
        {
            "product": product,
            "price": f"{number(price)} crowns",
            "release": date_text(release),
            "preorders": number(r.randrange(800, 40000, 100)),
        },
        {"product": "product", "price": "price", "release": "date", "preorders": "preorders"},
    )
    roll = r.random()
    if roll < 0.4:
        d.changes.append(
            (
                {"release": date_text(release + r.randint(10, 35))},
                r.choice(
                    [
                        "because of a shortage of display panels",
                        "after a software fault was found in testing",
                        "after a supplier's factory flooded",
                    ]
                ),
            )
        )
    elif roll < 0.6:
        d.changes.append(
            (
                {"price": f"{number(_bump(r, price + 1, 0.08, 0.25, 10) - 1)} crowns"},
                "after a change in component costs",
            )
        )
    return d


LAUNCH = {
    "topic": "tech",
    "headline": [
        "{company} unveils {product} {device}",
        "{company}'s new {product} to sell for {price}",
        "{product}: {company} bets on a {device}",
        "{company} {product} on sale from {release}",
    ],
    "lede": [
        "{company} has unveiled the {product}, a {device} that will go on sale on {release} for {price}.",
        "The {product}, a new {device} from {company}, will cost {price} when it reaches shops on {release}, the "
        "firm said on {weekday}.",
        "{company} on {weekday} showed off its latest {device}, the {product}, priced at {price}.",
    ],
    "facts": [
        [
            "It will be available from {release}.",
            "Shops will stock it from {release}.",
            "The release date has been set for {release}.",
        ],
        ["The {device} will cost {price}.", "It carries a price of {price}.", "The price has been set at {price}."],
        [
            "{company} said it had taken {preorders} preorders in the first week.",
            "The company reported {preorders} preorders within seven days.",
            "Within a week, {preorders} preorders had been placed, {company} said.",
        ],
    ],
    "change": {
        "release": {
            "headline": [
                "{company} delays {product} to {release}",
                "{product} launch pushed back",
                "{company}'s {product} now due {release}",
            ],
            "lede": [
                "{company} has delayed the launch of its {product} {device} to {release}, {reason}.",
                "The {product} from {company} will now go on sale on {release}, {reason}, the firm said on {weekday}.",
            ],
            "recap": ["It had been due in shops on {old_release}.", ""],
        },
        "price": {
            "headline": ["{company} changes price of {product} to {price}", "{product} now to cost {price}"],
            "lede": [
                "{company} has changed the price of its {product} {device} to {price}, {reason}.",
                "The {product} will now cost {price}, {company} said on {weekday}, {reason}.",
            ],
            "recap": ["The firm had first announced a price of {old_price}.", ""],
        },
    },
    "official": ("{ceo}", "chief executive of {company}"),
    "official_lines": [
        "We think this is the best {device} anyone has built at this price.",
        "Our engineers spent three years getting the details right.",
        "We listened to customers and built what they asked for.",
        "This product shows what a company from {region} can do.",
        "Demand has been stronger than we dared to hope.",
        "We would rather get it right than rush it out.",
    ],
    "critic": ("{analyst}", "a technology analyst"),
    "critic_lines": [
        "The hardware looks solid but the software will decide whether it sells.",
        "The price puts it in a very competitive part of the market.",
        "The company needs a hit after a difficult year.",
        "Preorder figures are encouraging but they are not sales.",
        "Rivals will not stand still while this reaches the shops.",
        "It is a sensible product rather than a revolutionary one.",
    ],
    "questions": {
        "product": ["What is {company}'s new {device} called?"],
        "price": ["How much will {company}'s new {device} cost?", "What is the price of the {device} from {company}?"],
        "release": [
            "When does {company}'s new {device} go on sale?",
            "What is the release date of {company}'s {device}?",
        ],
        "preorders": ["How many preorders did {company} take for its new {device} in the first week?"],
    },
    # Wordings only the extra questions use: in "questions" they would change the first questions' draws.
    "more_questions": {
        "product": ["What name has {company} given its new {device}?"],
        "price": ["What will {company} charge for its new {device}?"],
        "release": ["On what date will {company}'s new {device} be available?"],
        "preorders": ["How many advance orders did {company}'s new {device} get within a week?"],
    },
}


# ---------------------------------------------------------------- appointments
INSTITUTIONS = [
    ("{town} General Hospital", "chief executive"),
    ("the {town} Museum of Industry", "director"),
    ("{town} College", "principal"),
    ("the {town} police division", "chief superintendent"),
    ("the {town} Harbour Trust", "chair"),
    ("the {town} Library Service", "head"),
    ("{town} Water Company", "managing director"),
    ("the {town} Orchestra", "music director"),
]


def draw_appointment(r: random.Random, w: World, day: int, used: list[str]) -> Draw:
    while True:
        town = w.town()
        inst, role = r.choice(INSTITUTIONS)
        inst = inst.format(town=town.name)
        if inst not in used:
            used.append(inst)
            break
    start = day + r.randint(20, 70)
    shortlisted = w.person()
    d = Draw(
        {
            "inst": inst,
            "role": role,
            "town": town,
            "chair": w.person(),
            "staff_rep": w.person(),
            "shortlisted": shortlisted,
        },
        {"appointee": w.person(), "start": date_text(start), "predecessor": w.person()},
        {"appointee": "person", "start": "date", "predecessor": "person"},
    )
    roll = r.random()
    if roll < 0.35:
        d.changes.append(
            (
                {"appointee": shortlisted},
                r.choice(
                    [
                        "after the first choice withdrew for family reasons",
                        "after the original appointee turned the post down",
                    ]
                ),
            )
        )
    elif roll < 0.55:
        d.changes.append(({"start": date_text(start + r.randint(14, 45))}, "because of a long notice period"))
    return d


APPOINTMENT = {
    "topic": "institution",
    "headline": [
        "{appointee} named {role} of {inst}",
        "{inst} appoints {appointee} as {role}",
        "New {role} for {inst}: {appointee}",
        "{appointee} to lead {inst}",
    ],
    "lede": [
        "{appointee} has been appointed {role} of {inst}, the board said on {weekday}.",
        "{inst} has named {appointee} as its new {role}, ending a search that lasted months.",
        "The board of {inst} on {weekday} chose {appointee} to be its next {role}.",
    ],
    "facts": [
        [
            "{appointee} will take up the post on {start}.",
            "The new {role} starts on {start}.",
            "{appointee} is due to start on {start}.",
        ],
        [
            "{appointee} succeeds {predecessor}, who is retiring.",
            "The outgoing {role}, {predecessor}, is stepping down.",
            "{predecessor}, who has held the post for nine years, leaves at the end of the term.",
        ],
        ["The shortlist also included {shortlisted}.", "{shortlisted} was among the other candidates interviewed."],
    ],
    "change": {
        "appointee": {
            "headline": [
                "{appointee} to be {role} of {inst} after first pick withdraws",
                "{inst} turns to {appointee} as {role}",
                "Change at the top: {appointee} to lead {inst}",
            ],
            "lede": [
                "{appointee} will become {role} of {inst}, {reason}, the board said on {weekday}.",
                "{inst} has named {appointee} as {role}, {reason}.",
            ],
            "recap": ["{old_appointee} had been announced as the new {role} earlier.", ""],
        },
        "start": {
            "headline": ["New {role} of {inst} to start on {start}", "{appointee}'s start at {inst} delayed"],
            "lede": [
                "{appointee} will now take up the post of {role} at {inst} on {start}, {reason}.",
                "The start date of the new {role} of {inst}, {appointee}, has moved to {start}, {reason}.",
            ],
            "recap": ["The start had been planned for {old_start}.", ""],
        },
    },
    "official": ("{chair}", "who chaired the appointment panel"),
    "official_lines": [
        "We were impressed by the depth of experience and the clarity of vision.",
        "This is an exciting moment for the institution and for {town}.",
        "The panel was unanimous in its decision.",
        "We had a strong field and the decision was not easy.",
        "We look forward to a smooth handover in the coming weeks.",
        "Staff have been kept informed throughout the process.",
    ],
    "critic": ("{staff_rep}", "a staff representative"),
    "critic_lines": [
        "Staff want a leader who will listen and then act.",
        "We hope the new {role} will make staffing the first priority.",
        "There is a lot of goodwill but also a lot of fatigue.",
        "We were not consulted as much as we would have liked.",
        "The next year will be crucial for everyone who works here.",
        "We will judge the appointment by what changes on the ground.",
    ],
    "questions": {
        "appointee": ["Who will be the next {role} of {inst}?", "Who has been picked to lead {inst}?"],
        "start": ["When does the new {role} of {inst} take up the post?"],
        "predecessor": ["Who is the outgoing {role} of {inst}?"],
    },
    # Wordings only the extra questions use: in "questions" they would change the first questions' draws.
    "more_questions": {
        "appointee": ["Who has been named the new {role} of {inst}?"],
        "start": ["On what date will the new {role} of {inst} start?"],
        "predecessor": ["Who is stepping down as {role} of {inst}?"],
    },
}


# ---------------------------------------------------------------- festivals
FESTIVALS = ["Folk", "Harvest", "Lantern", "Sea Shanty", "Jazz", "Cider", "Blues", "Film"]


def draw_festival(r: random.Random, w: World, day: int, used: list[str]) -> Draw:
    while True:
        town = w.town()
        name = f"{town.name} {r.choice(FESTIVALS)} Festival"
        if name not in used:
            used.append(name)
            break
    band, other = r.sample(BANDS, 2)
    opening = day + r.randint(12, 40)
    visitors = r.randrange(3000, 60000, 500)
    d = Draw(
        {"fest": name, "town": town, "organiser": w.person(), "neighbour": w.person()},
        {
            "headliner": band,
            "opening": date_text(opening),
            "ticket": f"{r.randrange(25, 190, 5)} crowns",
            "visitors": number(visitors),
        },
        {"headliner": "band", "opening": "date", "ticket": "ticket", "visitors": "visitors"},
    )
    roll = r.random()
    if roll < 0.35:
        d.changes.append(
            (
                {"headliner": other},
                r.choice(
                    [
                        "after the original headliner cancelled their tour",
                        "after the booked act pulled out through illness",
                    ]
                ),
            )
        )
    elif roll < 0.5:
        d.changes.append(({"visitors": number(_bump(r, visitors, 0.15, 0.4, 500))}, "as ticket sales were updated"))
    elif roll < 0.62:
        d.changes.append(({"opening": date_text(opening + 7)}, "because of a clash with a regional holiday"))
    return d


FESTIVAL = {
    "topic": "culture",
    "headline": [
        "{headliner} to headline {fest}",
        "{fest} line-up: {headliner} top the bill",
        "{fest} opens {opening} with {headliner}",
        "Organisers expect {visitors} at {fest}",
    ],
    "lede": [
        "{headliner} will headline this year's {fest}, which opens on {opening}, organisers said on {weekday}.",
        "The {fest} has named {headliner} as its headline act for the festival starting {opening}.",
        "Organisers of the {fest} on {weekday} announced {headliner} as the main act.",
    ],
    "facts": [
        ["{headliner} top the bill.", "The headline act is {headliner}.", "Top of the bill is {headliner}."],
        [
            "Organisers expect {visitors} visitors over the weekend.",
            "Some {visitors} visitors are expected.",
            "The festival is expected to draw {visitors} visitors.",
        ],
        [
            "Weekend tickets cost {ticket}.",
            "A weekend ticket is priced at {ticket}.",
            "Tickets for the whole weekend are {ticket}.",
        ],
        ["The festival opens on {opening}.", "Gates open on {opening}.", "The first day is {opening}."],
    ],
    "change": {
        "headliner": {
            "headline": [
                "{headliner} replace headliner at {fest}",
                "New headliner for {fest}: {headliner}",
                "{fest} line-up change: {headliner} top the bill",
            ],
            "lede": [
                "{headliner} will now headline the {fest}, {reason}, organisers said on {weekday}.",
                "The {fest} has a new headline act, {headliner}, {reason}.",
            ],
            "recap": ["{old_headliner} had been announced as the main act.", ""],
        },
        "visitors": {
            "headline": ["{fest} now expects {visitors} visitors", "Bigger crowd forecast for {fest}"],
            "lede": [
                "Organisers of the {fest} now expect {visitors} visitors, {reason}.",
                "The {fest} has revised its expected attendance to {visitors}, {reason}.",
            ],
            "recap": ["The earlier forecast was {old_visitors}.", ""],
        },
        "opening": {
            "headline": ["{fest} moved to {opening}", "New date for {fest}"],
            "lede": [
                "The {fest} will now open on {opening}, {reason}, organisers said.",
                "Organisers have moved the opening of the {fest} to {opening}, {reason}.",
            ],
            "recap": ["It had been due to open on {old_opening}.", ""],
        },
    },
    "official": ("{organiser}", "the festival director"),
    "official_lines": [
        "We have worked all year to put together the strongest line-up we have had.",
        "The festival belongs to {town} and we want everyone to feel welcome.",
        "Safety and comfort for festival-goers come first.",
        "We have listened to feedback about the queues.",
        "This year's programme has something for every age.",
        "We could not do it without the volunteers.",
    ],
    "critic": ("{neighbour}", "who lives next to the festival site"),
    "critic_lines": [
        "The noise carries right across the valley late at night.",
        "Parking in the lanes is a nightmare every year.",
        "I do not mind the music but the litter is another matter.",
        "Organisers have made an effort to talk to neighbours this time.",
        "It is good for the town even if it is hard on our street.",
        "We just want the last act to finish at a sensible hour.",
    ],
    "questions": {
        "headliner": ["Who is headlining the {fest}?", "Which act tops the bill at the {fest}?"],
        "opening": ["When does the {fest} open?", "On what date does the {fest} start?"],
        "ticket": ["How much is a weekend ticket for the {fest}?"],
        "visitors": ["How many visitors are expected at the {fest}?"],
    },
    # Wordings only the extra questions use: in "questions" they would change the first questions' draws.
    "more_questions": {
        "headliner": ["Who is the headline act at the {fest}?"],
        "opening": ["When does this year's {fest} begin?"],
        "ticket": ["What does a ticket for the whole weekend of the {fest} cost?"],
        "visitors": ["How many people are expected to attend the {fest}?"],
    },
}


# ---------------------------------------------------------------- building contracts
FACILITIES = [
    "primary school",
    "swimming pool",
    "library",
    "health centre",
    "sports hall",
    "fire station",
    "bus station",
    "care home",
]


def draw_contract(r: random.Random, w: World, day: int, used: list[str]) -> Draw:
    while True:
        town = w.town()
        facility = r.choice(FACILITIES)
        if f"{town.name} {facility}" not in used:
            used.append(f"{town.name} {facility}")
            break
    year = r.choice([2027, 2028])
    month = r.randrange(12)
    cost = r.randint(30, 420)
    d = Draw(
        {"facility": facility, "town": town, "councillor": w.person(), "objector": w.person()},
        {"contractor": w.company("construction"), "cost": money(cost), "completion": f"{MONTHS[month]} {year}"},
        {"contractor": "contractor", "cost": "money", "completion": "month"},
    )
    roll = r.random()
    if roll < 0.4:
        d.changes.append(
            (
                {"cost": money(cost + r.randint(4, max(5, cost // 3)))},
                r.choice(["after steel and labour prices rose", "after ground surveys found old mine workings"]),
            )
        )
    elif roll < 0.6:
        late = month + r.randint(3, 9)
        d.changes.append(({"completion": f"{MONTHS[late % 12]} {year + late // 12}"}, "because of a planning delay"))
    return d


CONTRACT = {
    "topic": "construction",
    "headline": [
        "{contractor} wins contract for new {town} {facility}",
        "New {facility} for {town} to cost {cost}",
        "{town} {facility} deal signed with {contractor}",
        "Work to start on {town}'s {cost} {facility}",
    ],
    "lede": [
        "{contractor} has won the contract to build a new {facility} in {town}, the council said on {weekday}.",
        "The council in {town} has signed a {cost} deal with {contractor} for a new {facility}.",
        "A new {facility} is to be built in {town} by {contractor}, councillors agreed on {weekday}.",
    ],
    "facts": [
        ["The project will cost {cost}.", "The bill is put at {cost}.", "The council has budgeted {cost}."],
        [
            "It is due to open in {completion}.",
            "Completion is planned for {completion}.",
            "The building should be finished by {completion}.",
        ],
        ["{contractor} was chosen from four bidders.", "Four firms bid for the work before {contractor} was picked."],
    ],
    "change": {
        "cost": {
            "headline": [
                "Cost of {town} {facility} rises to {cost}",
                "{town} {facility} bill climbs to {cost}",
                "Overrun: new {facility} in {town} now {cost}",
            ],
            "lede": [
                "The new {facility} in {town} will cost {cost}, {reason}, councillors were told on {weekday}.",
                "The price of the {facility} being built in {town} by {contractor} has risen to {cost}, {reason}.",
            ],
            "recap": ["The original budget was {old_cost}.", "The project was first costed at {old_cost}.", ""],
        },
        "completion": {
            "headline": ["{town} {facility} delayed to {completion}", "New {facility} in {town} will open later"],
            "lede": [
                "The new {facility} in {town} will not open until {completion}, {reason}.",
                "Completion of the {facility} in {town} has slipped to {completion}, {reason}.",
            ],
            "recap": ["It had been due to open in {old_completion}.", ""],
        },
    },
    "official": ("{councillor}", "the council's cabinet member for property"),
    "official_lines": [
        "This is a building the town has needed for a generation.",
        "We have built in strict controls on cost and timing.",
        "The design was shaped by what residents told us.",
        "It will serve {town} for the next sixty years.",
        "We are confident the contractor can deliver.",
        "Every penny of this budget will be scrutinised.",
    ],
    "critic": ("{objector}", "who led a campaign against the plans"),
    "critic_lines": [
        "The council has not been straight about the real cost.",
        "We are not against the building, we are against the site.",
        "Residents were consulted after the decision was already made.",
        "There are cheaper ways to do this.",
        "We will be watching every stage of the build.",
        "The traffic plan for the site makes no sense.",
    ],
    "questions": {
        "contractor": ["Which company will build the new {facility} in {town}?"],
        "cost": ["How much will the new {facility} in {town} cost?", "What is the budget for {town}'s new {facility}?"],
        "completion": ["When is the new {facility} in {town} due to open?"],
    },
    # Wordings only the extra questions use: in "questions" they would change the first questions' draws.
    "more_questions": {
        "contractor": ["Which firm won the contract for {town}'s new {facility}?"],
        "cost": ["What will {town}'s new {facility} cost to build?"],
        "completion": ["When should the new {facility} in {town} be finished?"],
    },
}


# ---------------------------------------------------------------- fires
CAUSES = [
    "an electrical fault",
    "a discarded cigarette",
    "a faulty forklift charger",
    "hot works on the roof",
    "a lightning strike",
    "an overheated dryer",
    "deliberate ignition",
    "a failed battery pack",
]
ROADS = [
    "Tanyard Road",
    "Ropewalk Lane",
    "Quayside Way",
    "Furnace Street",
    "Brickfield Road",
    "Sandpit Lane",
    "Gasworks Road",
    "Wharf Street",
    "Kiln Lane",
    "Foundry Road",
]


def draw_fire(r: random.Random, w: World, day: int, used: list[str]) -> Draw:
    while True:
        town = w.town()
        road = r.choice(ROADS)
        if f"{town.name} {road}" not in used:
            used.append(f"{town.name} {road}")
            break
    cause, other = r.sample(CAUSES, 2)
    injured = r.randint(2, 12)
    d = Draw(
        {"place": f"a warehouse on {road}", "road": road, "town": town, "chief": w.person(), "witness": w.person()},
        {"injured": f"{injured} people", "crews": f"{r.randrange(20, 95, 5)} firefighters", "cause": cause},
        {"injured": "injured", "crews": "crews", "cause": "cause"},
    )
    roll = r.random()
    if roll < 0.35:
        d.changes.append(
            ({"injured": f"{injured + r.randint(2, 6)} people"}, "as more people came forward for treatment")
        )
    elif roll < 0.65:
        d.changes.append(({"cause": other}, "after fire investigators examined the scene"))
    return d


FIRE = {
    "topic": "emergency",
    "headline": [
        "Fire tears through {town} warehouse",
        "{injured} hurt in {road} warehouse blaze",
        "Huge fire on {road} in {town}",
        "{crews} fight {town} warehouse fire",
    ],
    "lede": [
        "A large fire broke out at {place} in {town} on {weekday}, and {injured} were taken to hospital.",
        "{crews} were sent to {place} in {town} on {weekday} as flames spread through the building.",
        "Fire destroyed much of {place} in {town} on {weekday}, injuring {injured}.",
    ],
    "facts": [
        [
            "In total, {injured} needed hospital treatment.",
            "The ambulance service said {injured} were treated.",
            "The number hurt was given as {injured}.",
        ],
        [
            "At the height of the blaze, {crews} were at the scene.",
            "Some {crews} tackled the flames.",
            "The fire service sent {crews} in total.",
        ],
        [
            "The fire is believed to have been started by {cause}.",
            "Officers think the cause was {cause}.",
            "Early findings point to {cause}.",
        ],
    ],
    "change": {
        "injured": {
            "headline": ["{road} fire: number hurt rises to {injured}", "More injured in {town} warehouse fire"],
            "lede": [
                "The number of people hurt in the fire at {place} in {town} has risen to {injured}, {reason}.",
                "A total of {injured} were injured in the {road} warehouse fire in {town}, officials said on "
                "{weekday}, {reason}.",
            ],
            "recap": ["The first figure given was {old_injured}.", ""],
        },
        "cause": {
            "headline": ["{town} warehouse fire was caused by {cause}", "Cause of {road} fire found"],
            "lede": [
                "The fire at {place} in {town} was caused by {cause}, {reason}, the fire service said on {weekday}.",
                "Investigators now say {cause} started the {road} warehouse fire in {town}, {reason}.",
            ],
            "recap": ["It had first been thought to be {old_cause}.", ""],
        },
    },
    "official": ("{chief}", "the area fire commander"),
    "official_lines": [
        "Crews worked through the night in very difficult conditions.",
        "I want to thank residents for following our advice to stay indoors.",
        "Our investigation will be thorough and it will take time.",
        "This could have been far worse without the quick response.",
        "We will be at the site for several days damping down.",
        "Please stay away from the area while we finish our work.",
    ],
    "critic": ("{witness}", "who works on the same street"),
    "critic_lines": [
        "The smoke was so thick you could not see across the road.",
        "I heard a bang and then the whole roof went up.",
        "People were running out with their phones and coats.",
        "We have complained about the pallets stacked outside for years.",
        "The firefighters were there within minutes.",
        "It is a miracle nobody was killed.",
    ],
    "questions": {
        "injured": ["How many people were hurt in the warehouse fire on {road} in {town}?"],
        "crews": ["How many firefighters tackled the warehouse blaze on {road} in {town}?"],
        "cause": ["What caused the warehouse fire on {road} in {town}?"],
    },
    # Wordings only the extra questions use: in "questions" they would change the first questions' draws.
    "more_questions": {
        "injured": ["How many people were injured in the {road} warehouse fire in {town}?"],
        "crews": ["How many firefighters were sent to the warehouse fire on {road} in {town}?"],
        "cause": ["What started the warehouse fire on {road} in {town}?"],
    },
}
