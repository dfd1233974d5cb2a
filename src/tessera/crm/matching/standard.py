"""Salesforce's standard matching rules, installed by a data migration.

Contact and Lead (the same criteria; cross-object between them):
 1 First Name fuzzy 85, 2 Last Name fuzzy 90, 3 Title 50, 4 Company 70, 5 Email exact,
 6 Phone 80, 7 Street 80, 8 City 85, 9 ZIP 80.
Account: name fuzzy (company method) AND (street OR city+ZIP OR phone OR website domain);
never the name alone.
"""

from __future__ import annotations

from typing import Any


def _numbered(start: int = 1, **thresholds: int) -> list[tuple[int, str, str, int]]:
    """(number, field, method, threshold) for each field, numbered in the order given as
    the logic names them; each field compared by the method of its own name."""
    return [(n, f, f, t) for n, (f, t) in enumerate(thresholds.items(), start=start)]


PERSON_CRITERIA = _numbered(
    first_name=85, last_name=90, title=50, company=70, email=100, phone=80, street=80,
    city=85, postal_code=80,
)  # fmt: skip
PERSON_LOGIC = (
    "(1 AND 2 AND 3 AND 4) OR (1 AND 2 AND 5) OR (1 AND 2 AND 6 AND 4) OR "
    "(1 AND 2 AND 7 AND (8 OR 9 OR 6)) OR (1 AND 2 AND 7 AND 3) OR (1 AND 2 AND 3 AND 5) OR "
    "(1 AND 2 AND 6)"
)
# An organisation's name is compared as a company name is.
ACCOUNT_CRITERIA = [
    (1, "name", "company", 70),
    *_numbered(start=2, street=80, city=85, postal_code=80, phone=80, website=100),
]
ACCOUNT_LOGIC = "1 AND (2 OR (3 AND 4) OR 5 OR 6)"

STANDARD_RULES = [
    ("contact", "Standard Contact Matching Rule", PERSON_LOGIC, PERSON_CRITERIA),
    ("lead", "Standard Lead Matching Rule", PERSON_LOGIC, PERSON_CRITERIA),
    ("account", "Standard Account Matching Rule", ACCOUNT_LOGIC, ACCOUNT_CRITERIA),
]


def install_standard_rules(rule_model: Any = None, criterion_model: Any = None) -> int:
    """Create any missing standard rule; returns how many were created. Idempotent.

    The migration passes its historical models; tests that flush tables call it plainly."""
    if rule_model is None or criterion_model is None:
        from tessera.crm.matching.models import MatchingCriterion, MatchingRule

        rule_model, criterion_model = MatchingRule, MatchingCriterion
    created = 0
    for object_type, name, logic, criteria in STANDARD_RULES:
        if rule_model.objects.filter(object=object_type, is_standard=True).exists():
            continue
        rule = rule_model.objects.create(
            object=object_type, name=name, logic=logic, action="allow", active=True,
            is_standard=True,
        )  # fmt: skip
        criterion_model.objects.bulk_create(
            criterion_model(rule=rule, number=n, field=f, method=m, threshold=t)
            for n, f, m, t in criteria
        )
        created += 1
    return created
