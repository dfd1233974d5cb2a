"""A seeded population of people with damaged duplicates, for probabilistic matching tests.

People get names drawn with realistic skew (many Smiths, few Zielinskis), an address whose
city, postal code and phone area code go together, an email built from the name, and a
birth date. A share of them get a second record with the kind of damage real duplicates
carry: typos, nicknames, blanks, a changed email, a move, a day and month swapped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

Record = dict[str, str]

# (name, weight): a few very common names and a long tail.
FIRST_NAMES = [
    ("james", 40), ("john", 40), ("robert", 35), ("michael", 35), ("william", 30),
    ("david", 30), ("richard", 20), ("joseph", 20), ("thomas", 20), ("charles", 15),
    ("mary", 40), ("patricia", 25), ("jennifer", 30), ("linda", 20), ("elizabeth", 25),
    ("barbara", 15), ("susan", 15), ("jessica", 15), ("sarah", 20), ("karen", 15),
    ("catherine", 10), ("katherine", 10), ("steven", 10), ("stephen", 10), ("anthony", 10),
    ("margaret", 10), ("daniel", 20), ("matthew", 15), ("andrew", 15), ("emily", 10),
    ("zbigniew", 1), ("ingrid", 2), ("oluwaseun", 1), ("siobhan", 2), ("mateusz", 2),
    ("giulia", 3), ("henrik", 2), ("yusuf", 2), ("priya", 3), ("chen", 3),
]  # fmt: skip
NICKNAMES = {
    "james": "jim", "john": "jack", "robert": "bob", "michael": "mike", "william": "bill",
    "richard": "dick", "joseph": "joe", "thomas": "tom", "elizabeth": "liz",
    "patricia": "pat", "jennifer": "jen", "margaret": "peggy", "daniel": "dan",
    "matthew": "matt", "andrew": "andy", "anthony": "tony", "catherine": "kate",
    "katherine": "kathy", "steven": "steve", "stephen": "steve", "susan": "sue",
}  # fmt: skip
LAST_NAMES = [
    ("smith", 60), ("johnson", 45), ("williams", 40), ("brown", 35), ("jones", 35),
    ("garcia", 30), ("miller", 30), ("davis", 25), ("rodriguez", 20), ("martinez", 20),
    ("hernandez", 15), ("lopez", 15), ("wilson", 15), ("anderson", 15), ("thomas", 12),
    ("taylor", 12), ("moore", 10), ("jackson", 10), ("martin", 10), ("lee", 10),
    ("thompson", 8), ("white", 8), ("harris", 8), ("clark", 8), ("lewis", 6),
    ("robinson", 6), ("walker", 6), ("young", 6), ("allen", 6), ("king", 6),
    ("wright", 5), ("scott", 5), ("green", 5), ("baker", 5), ("adams", 5),
    ("nelson", 4), ("hill", 4), ("campbell", 4), ("mitchell", 4), ("roberts", 4),
    ("carter", 3), ("phillips", 3), ("evans", 3), ("turner", 3), ("torres", 3),
    ("kowalczyk", 1), ("zielinski", 1), ("okonkwo", 1), ("fitzgerald", 2), ("nakamura", 2),
    ("oconnor", 2), ("schneider", 2), ("lindqvist", 1), ("papadopoulos", 1), ("haddad", 1),
    ("nguyen", 4), ("patel", 4), ("kim", 3), ("murphy", 3), ("rossi", 2),
]  # fmt: skip
# (city, postal prefix, phone area code)
CITIES = [
    ("Boston", "021", "617"), ("Cambridge", "021", "617"), ("Springfield", "011", "413"),
    ("Worcester", "016", "508"), ("Providence", "029", "401"), ("Hartford", "061", "860"),
    ("New Haven", "065", "203"), ("Albany", "122", "518"), ("Buffalo", "142", "716"),
    ("Rochester", "146", "585"), ("Syracuse", "132", "315"), ("Portland", "041", "207"),
    ("Burlington", "054", "802"), ("Manchester", "031", "603"), ("Newark", "071", "973"),
    ("Trenton", "086", "609"), ("Philadelphia", "191", "215"), ("Pittsburgh", "152", "412"),
    ("Baltimore", "212", "410"), ("Richmond", "232", "804"),
]  # fmt: skip
STREETS = [
    "Main", "Oak", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park", "Pine",
    "Walnut", "Church", "Spring", "Highland", "Mill", "River", "Chestnut", "Franklin",
    "Jefferson", "Lincoln", "Madison", "Sunset", "Willow", "Meadow", "Forest", "Ridge",
]  # fmt: skip
SUFFIXES = ["St", "Street", "Ave", "Avenue", "Rd", "Road", "Ln", "Dr", "Ct", "Way"]
DOMAINS = [("gmail.com", 50), ("yahoo.com", 20), ("outlook.com", 15), ("aol.com", 5),
           ("icloud.com", 10)]  # fmt: skip
COMPANIES = ["Acme Inc", "Globex Corporation", "Initech LLC", "Umbrella Corp",
             "Stark Industries", "Wayne Enterprises", "Hooli", "Vandelay Industries"]  # fmt: skip
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass
class Population:
    records: list[Record] = field(default_factory=list)
    # (original index, duplicate index) for every damaged duplicate
    duplicates: list[tuple[int, int]] = field(default_factory=list)


def _weighted(rng: random.Random, choices: list[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def typo(rng: random.Random, text: str, alphabet: str = LETTERS) -> str:
    """One substitution, transposition, deletion or insertion, never of the first letter."""
    if len(text) < 3:
        return text + rng.choice(alphabet)
    i = rng.randrange(1, len(text) - 1)
    kind = rng.choice(("substitute", "transpose", "delete", "insert"))
    if kind == "substitute":
        return text[:i] + rng.choice(alphabet.replace(text[i], "")) + text[i + 1 :]
    if kind == "transpose":
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == "delete":
        return text[:i] + text[i + 1 :]
    return text[:i] + rng.choice(alphabet) + text[i:]


def _digit_typo(rng: random.Random, digits: str) -> str:
    i = rng.randrange(len(digits) - 6, len(digits))  # the subscriber part
    return digits[:i] + rng.choice("0123456789".replace(digits[i], "")) + digits[i + 1 :]


def _address(rng: random.Random) -> dict[str, str]:
    city, postal_prefix, area = rng.choice(CITIES)
    street = f"{rng.randint(1, 999)} {rng.choice(STREETS)} {rng.choice(SUFFIXES)}"
    return {
        "street": street,
        "city": city,
        "postal_code": f"{postal_prefix}{rng.randint(0, 99):02d}",
        "_area": area,
    }


def _email(rng: random.Random, first: str, last: str, taken: set[str]) -> str:
    """An address built from the name, as most are; one person's own (providers hand
    out each address once), so "john.smith" soon needs a number."""
    base = rng.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}{last}"))
    domain = _weighted(rng, DOMAINS)
    email = f"{base}@{domain}"
    while email in taken:
        email = f"{base}{rng.randint(1, 9999)}@{domain}"
    taken.add(email)
    return email


def person(rng: random.Random, taken: set[str]) -> Record:
    first, last = _weighted(rng, FIRST_NAMES), _weighted(rng, LAST_NAMES)
    address = _address(rng)
    area = address.pop("_area")
    born = f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return {
        "first_name": first.capitalize(),
        "last_name": last.capitalize(),
        "email": _email(rng, first, last, taken),
        "phone": f"+1{area}{rng.randint(2000000, 9999999)}",
        "birthdate": born,
        **address,
        "company": rng.choice(COMPANIES) if rng.random() < 0.3 else "",
    }


def _damage_name(rng: random.Random, record: Record) -> None:
    first = record["first_name"].lower()
    if first in NICKNAMES and rng.random() < 0.2:
        record["first_name"] = NICKNAMES[first].capitalize()
    elif rng.random() < 0.1:
        record["first_name"] = typo(rng, record["first_name"])
    if rng.random() < 0.15:
        record["last_name"] = typo(rng, record["last_name"])


def _damage_contact(rng: random.Random, record: Record, taken: set[str]) -> None:
    roll = rng.random()
    if roll < 0.2:
        first, last = record["first_name"].lower(), record["last_name"].lower()
        record["email"] = _email(rng, first, last, taken)
    elif roll < 0.25:
        local, _, domain = record["email"].partition("@")
        record["email"] = f"{typo(rng, local)}@{domain}"
    roll = rng.random()
    if roll < 0.1:
        record["phone"] = _digit_typo(rng, record["phone"])
    elif roll < 0.2:
        record["phone"] = f"+1{record['phone'][2:5]}{rng.randint(2000000, 9999999)}"


def _damage_birthdate(rng: random.Random, record: Record) -> None:
    year, month, day = record["birthdate"].split("-")
    roll = rng.random()
    if roll < 0.05 and int(day) <= 12:
        record["birthdate"] = f"{year}-{day}-{month}"
    elif roll < 0.1:
        record["birthdate"] = f"{year}-{month}-{(int(day) % 28) + 1:02d}"


def _damage_address(rng: random.Random, record: Record) -> None:
    roll = rng.random()
    if roll < 0.1:
        moved = _address(rng)
        moved.pop("_area")
        record.update(moved)
    elif roll < 0.2:
        number, name, suffix = record["street"].split(" ", 2)
        record["street"] = f"{number} {typo(rng, name)} {suffix}"
    if rng.random() < 0.05:
        record["city"] = typo(rng, record["city"])
    if rng.random() < 0.05:
        record["postal_code"] = typo(rng, record["postal_code"], "0123456789")


def duplicate(
    rng: random.Random, original: Record, taken: set[str], missing: float = 0.1
) -> Record:
    """A damaged copy of a record; each field is blank with probability ``missing``."""
    record = dict(original)
    _damage_name(rng, record)
    _damage_contact(rng, record, taken)
    _damage_birthdate(rng, record)
    _damage_address(rng, record)
    for name in record:
        if name not in ("first_name", "last_name") and rng.random() < missing:
            record[name] = ""
    return record


def population(size: int = 3000, duplicate_share: float = 0.2, seed: int = 7) -> Population:
    """``size`` people, and a damaged duplicate of ``duplicate_share`` of them."""
    rng = random.Random(seed)
    taken: set[str] = set()
    out = Population(records=[person(rng, taken) for _ in range(size)])
    for original in rng.sample(range(size), round(size * duplicate_share)):
        out.duplicates.append((original, len(out.records)))
        out.records.append(duplicate(rng, out.records[original], taken))
    return out
