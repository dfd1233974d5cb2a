"""Synthetic people for the matching benchmark, and the light damage of its first version.

Seeded Faker people, ~90% American and the rest British, German and French. ``Damager``
is the gentle damage (one or two of a nickname, one typo in a name, a missing email or
phone, a reformatted phone, a move, a company suffix, swapped names): ``--damage light``.
The realistic damage is in ``corruption.py``.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

# --- synthetic people ----------------------------------------------------------------------

# (locale, weight, phone region, country name, legal suffixes used when adding one)
LOCALES: tuple[tuple[str, float, str, str, tuple[str, ...]], ...] = (
    ("en_US", 0.90, "US", "United States", (", Inc.", " Inc", " LLC", " Corp.", " Co.")),
    ("en_GB", 0.034, "GB", "United Kingdom", (" Ltd", " Limited", " PLC")),
    ("de_DE", 0.033, "DE", "Germany", (" GmbH", " AG", " GmbH & Co. KG")),
    ("fr_FR", 0.033, "FR", "France", (" SA", " SARL", " SAS")),
)
LEGAL_SUFFIXES = frozenset(
    {
        "inc", "llc", "ltd", "limited", "plc", "corp", "corporation", "co", "gmbh", "ag",
        "kg", "sa", "sarl", "sas", "lp", "llp",
    }
)  # fmt: skip
US_FORMATS = (
    "({a}) {e}-{l}",
    "{a}-{e}-{l}",
    "{a}.{e}.{l}",
    "+1 {a} {e} {l}",
    "+1{a}{e}{l}",
    "1-{a}-{e}-{l}",
    "+1 ({a}) {e}-{l}",
)
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com")
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
# Share of people whose birth date a CRM holds (event registrations often ask for it).
BIRTHDATE_SHARE = 0.6


def ascii_slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^a-z]", "", decomposed.encode("ascii", "ignore").decode().lower())


@dataclass
class Person:
    locale: int  # index into LOCALES
    values: dict[str, str]
    id: str = ""


class PeopleFactory:
    """Seeded synthetic people: ~90% en_US, the rest British, German and French."""

    def __init__(self, seed: int, *, birthdates: bool = False) -> None:
        from faker import Faker

        self.rng = random.Random(seed)
        # Birth dates draw from their own generator, so turning them on (the realistic
        # population) leaves every other value of every person as the light one has it.
        self.dates = random.Random(seed + 99) if birthdates else None
        self.fakers = []
        for i, (locale, *_rest) in enumerate(LOCALES):
            fake = Faker(locale)
            fake.seed_instance(seed * 100 + i)
            self.fakers.append(fake)
        self.weights = [w for _, w, *_rest in LOCALES]
        self.emails: set[str] = set()

    def locale(self) -> int:
        return self.rng.choices(range(len(LOCALES)), self.weights)[0]

    def us_phone(self) -> str:
        area = self.rng.randint(201, 989)
        while area % 100 == 11:
            area = self.rng.randint(201, 989)
        exchange, line = self.rng.randint(200, 999), self.rng.randint(0, 9999)
        fmt = self.rng.choice(US_FORMATS)
        return fmt.format(a=area, e=exchange, l=f"{line:04d}")

    def phone(self, loc: int) -> str:
        if LOCALES[loc][0] == "en_US":
            return self.us_phone()
        return str(self.fakers[loc].phone_number())

    def email(self, first: str, last: str) -> str:
        f, last_ = ascii_slug(first) or "x", ascii_slug(last) or "y"
        patterns = (f"{f}.{last_}", f"{f[0]}{last_}", f"{f}{last_}", f"{f}_{last_}")
        local = self.rng.choice(patterns)
        if self.rng.random() < 0.6:
            local += str(self.rng.randint(1, 999))
        domain = self.rng.choice(EMAIL_DOMAINS)
        email = f"{local}@{domain}"
        while email in self.emails:
            email = f"{local}{self.rng.randint(1000, 99999)}@{domain}"
        self.emails.add(email)
        return email

    def address(self, loc: int) -> dict[str, str]:
        fake = self.fakers[loc]
        street = ", ".join(part.strip() for part in str(fake.street_address()).splitlines())
        return {"street": street, "city": str(fake.city()), "postal_code": str(fake.postcode())}

    def person(self) -> Person:
        loc = self.locale()
        fake = self.fakers[loc]
        first, last = str(fake.first_name()), str(fake.last_name())
        values = {
            "first_name": first,
            "last_name": last,
            "email": self.email(first, last) if self.rng.random() < 0.97 else "",
            "phone": self.phone(loc) if self.rng.random() < 0.95 else "",
            "company": str(fake.company()) if self.rng.random() < 0.95 else "",
            "title": str(fake.job())[:128] if self.rng.random() < 0.9 else "",
            **self.address(loc),
            "country": LOCALES[loc][3],
        }
        if self.dates is not None and self.dates.random() < BIRTHDATE_SHARE:
            values["birthdate"] = self.birthdate()
        return Person(loc, values)

    def birthdate(self) -> str:
        if self.dates is None:
            return ""
        born = date(1940, 1, 1) + timedelta(days=self.dates.randrange(365 * 65))
        return born.isoformat()


# --- damage --------------------------------------------------------------------------------

# Applied in this order (a nickname is looked up before a typo or a swap changes the name).
DAMAGES = ("nickname", "typo", "missing", "phone_format", "moved", "company", "swap")


class Damager:
    """Realistic damage to a copy of a stored person: one or two of DAMAGES."""

    def __init__(self, rng: random.Random, factory: PeopleFactory) -> None:
        from nicknames import NickNamer

        self.rng = rng
        self.factory = factory
        self.nicknamer = NickNamer()

    def applicable(self, name: str, v: dict[str, str], loc: int) -> bool:
        if name == "nickname":
            return bool(self.nicknames(v.get("first_name", "")))
        if name == "phone_format":
            return bool(v.get("phone")) and self.reformat_phone(v["phone"], loc, probe=True) != ""
        if name == "missing":
            return bool(v.get("email") or v.get("phone"))
        if name == "swap":
            return bool(v.get("first_name") and v.get("last_name"))
        if name == "company":
            return bool(v.get("company"))
        return True

    def nicknames(self, first: str) -> list[str]:
        return sorted(self.nicknamer.nicknames_of(first.lower())) if first else []

    def damage(self, person: Person) -> tuple[dict[str, str], list[str]]:
        v = dict(person.values)
        options = [d for d in DAMAGES if self.applicable(d, v, person.locale)]
        chosen = self.rng.sample(options, k=min(len(options), self.rng.choice((1, 2))))
        for name in sorted(chosen, key=DAMAGES.index):
            getattr(self, f"_{name}")(v, person.locale)
        return {k: val for k, val in v.items() if val}, chosen

    def typo(self, word: str) -> str:
        """One slip of the finger: a neighbouring key, a dropped, doubled or swapped letter."""
        if len(word) < 2:
            return word
        low = word.lower()
        i = self.rng.randrange(len(low))
        kind = self.rng.choice(("substitute", "delete", "insert", "transpose"))
        if kind == "substitute":
            row = next((r for r in KEYBOARD_ROWS if low[i] in r), None)
            if row is not None:
                j = row.index(low[i])
                new = self.rng.choice([row[k] for k in (j - 1, j + 1) if 0 <= k < len(row)])
            else:
                new = self.rng.choice("abcdefghijklmnopqrstuvwxyz")
            out = low[:i] + new + low[i + 1 :]
        elif kind == "delete":
            out = low[:i] + low[i + 1 :]
        elif kind == "insert":
            out = low[:i] + low[i] + low[i:]
        else:
            i = min(i, len(low) - 2)
            out = low[:i] + low[i + 1] + low[i] + low[i + 2 :]
        # Keep the original capitalisation where the letters still line up.
        return "".join(
            c.upper() if k < len(word) and word[k].isupper() else c for k, c in enumerate(out)
        )

    def _typo(self, v: dict[str, str], loc: int) -> None:
        target = "last_name" if self.rng.random() < 0.6 else "first_name"
        if not v.get(target):
            target = "last_name"
        v[target] = self.typo(v[target])

    def _nickname(self, v: dict[str, str], loc: int) -> None:
        v["first_name"] = self.rng.choice(self.nicknames(v["first_name"])).title()

    def _swap(self, v: dict[str, str], loc: int) -> None:
        v["first_name"], v["last_name"] = v["last_name"], v["first_name"]

    def _missing(self, v: dict[str, str], loc: int) -> None:
        what = self.rng.choice(("email", "phone", "both"))
        if what in ("email", "both"):
            v["email"] = ""
        if what in ("phone", "both"):
            v["phone"] = ""

    def reformat_phone(self, phone: str, loc: int, *, probe: bool = False) -> str:
        import phonenumbers

        digits = re.sub(r"\D", "", phone.split("x")[0])
        if LOCALES[loc][0] == "en_US" and (
            len(digits) == 10 or (len(digits) == 11 and digits[0] == "1")
        ):
            a, e, line = digits[-10:-7], digits[-7:-4], digits[-4:]
            formats = [f for f in US_FORMATS if f.format(a=a, e=e, l=line) != phone]
            return self.rng.choice(formats).format(a=a, e=e, l=line) if not probe else "ok"
        try:
            number = phonenumbers.parse(phone, LOCALES[loc][2])
        except phonenumbers.NumberParseException:
            return ""
        fmts = (
            phonenumbers.PhoneNumberFormat.E164,
            phonenumbers.PhoneNumberFormat.INTERNATIONAL,
            phonenumbers.PhoneNumberFormat.NATIONAL,
        )
        options = [phonenumbers.format_number(number, f) for f in fmts]
        options = [o for o in options if o != phone]
        if probe or not options:
            return "ok" if options else ""
        return self.rng.choice(options)

    def _phone_format(self, v: dict[str, str], loc: int) -> None:
        v["phone"] = self.reformat_phone(v["phone"], loc) or v["phone"]

    def _moved(self, v: dict[str, str], loc: int) -> None:
        v.update(self.factory.address(loc))

    def _company(self, v: dict[str, str], loc: int) -> None:
        company = v["company"]
        tokens = company.replace(",", " ").split()
        if len(tokens) > 1 and tokens[-1].strip(".").lower() in LEGAL_SUFFIXES:
            cut = company.lower().rstrip().rfind(tokens[-1].lower())
            v["company"] = company[:cut].rstrip(" ,")
        else:
            v["company"] = company + self.rng.choice(LOCALES[loc][4])
