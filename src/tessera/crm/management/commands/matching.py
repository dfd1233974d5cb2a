"""``tessera matching train [--object contact]``: fit the probabilistic model to the records.

Training reads the stored records (at most ``--limit``, the most recently active first),
estimates without labels how each field compares between two records of one person (m)
and of two people (u), and saves the model. Rules in probabilistic mode use it from then
on, in every process, within a second. Run it again when the data has changed much.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import IO, Any, cast

from django.core.management.base import BaseCommand
from rich.console import Console
from rich.table import Table

from tessera.crm.matching.fs_model import weight_rows
from tessera.crm.matching.probabilistic import TRAINING_LIMIT, model_of, train_model
from tessera.crm.matching.rules import OBJECT_MODELS


class Command(BaseCommand):
    help = "Train the probabilistic matching model: `tessera matching train [--object contact]`."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("action", choices=["train"])
        parser.add_argument(
            "--object", choices=sorted(OBJECT_MODELS), action="append",
            help="only these objects (repeatable); default: contact and lead",
        )  # fmt: skip
        parser.add_argument("--limit", type=int, default=TRAINING_LIMIT, help="records read")
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        console = Console(file=cast(IO[str], self.stdout), width=100)
        for object_type in options["object"] or ["contact", "lead"]:
            with console.status(f"Training the {object_type} model..."):
                done = train_model(object_type, limit=options["limit"], seed=options["seed"])
            state = "converged" if done.converged else "stopped at its iteration limit"
            console.print(
                f"[bold]{object_type}[/]: {done.records:,} records, {done.pairs:,} pairs, "
                f"{done.seconds:.1f} s, {state}."
            )
            if done.defaulted:
                console.print(
                    "Too few duplicates to learn how often one person's records agree on "
                    f"{', '.join(done.defaulted)}: the hand-set m is kept for these."
                )
            console.print(weights_table(object_type, done.stored.model))


def weights_table(object_type: str, stored: dict[str, Any]) -> Table:
    """Each field's levels with m, u and the weight log2(m/u) a pair at that level adds."""
    model = model_of(object_type, stored)
    table = Table(title=f"{object_type} model weights")
    for name in ("field", "level", "m", "u", "weight"):
        table.add_column(name, justify="left" if name in ("field", "level") else "right")
    for name, label, m, u, w in weight_rows(model):
        table.add_row(name, label, f"{m:.4f}", f"{u:.6f}", f"{w:+.2f}")
    return table
