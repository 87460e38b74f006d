"""Loading the bureaus' reference data and finding the policy and catalog that apply."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import orjson
from pydantic import ValidationError

from clearing.core.errors import InputError
from clearing.core.models.refdata import Catalog, Policy
from clearing.core.models.types import province_of
from clearing.core.parse import describe


class RefDataError(InputError):
    """A reference-data document that cannot be used; the message names the file and field."""


class Terms(NamedTuple):
    """A catalog entry as pricing reads it: class, B pre-self-pay share, unit price cap."""

    class_: str
    b_selfpay_bp: int
    price_cap_fen: int | None


@dataclass
class RefData:
    """Policies by (region, scheme, year) and catalogs by (province, year).

    `tiers` is true once some policy has a `critical` or `assistance` block (`tiers.md`): then
    priced and reversed results carry the tier fields (see `clearing.core.models.results`).
    """

    policies: dict[tuple[str, str, int], Policy] = field(default_factory=dict)
    catalogs: dict[tuple[str, int], Catalog] = field(default_factory=dict)
    terms: dict[tuple[str, int], dict[str, Terms]] = field(default_factory=dict)
    tiers: bool = False

    def add_policy(self, policy: Policy) -> None:
        self.policies[(policy.region, policy.scheme, policy.year)] = policy
        self.tiers = self.tiers or policy.has_tiers

    def add_catalog(self, catalog: Catalog) -> None:
        key = (catalog.province, catalog.year)
        self.catalogs[key] = catalog
        self.terms[key] = {
            code: Terms(entry.class_, entry.b_selfpay_bp or 0, entry.price_cap_fen)
            for code, entry in catalog.items.items()
        }

    def policy_for(self, home_region: str, scheme: str, year: int) -> Policy | None:
        """The policy of the exact home region, else that of its province."""
        exact = self.policies.get((home_region, scheme, year))
        if exact is not None:
            return exact
        return self.policies.get((province_of(home_region), scheme, year))

    def catalog_for(self, province: str, year: int) -> Catalog | None:
        return self.catalogs.get((province, year))

    def terms_for(self, province: str, year: int) -> dict[str, Terms] | None:
        """The catalog of a province and year, indexed for pricing."""
        return self.terms.get((province, year))


def parse_document(raw: bytes, source: str) -> Policy | Catalog:
    """One policy or catalog document; which one is told by its fields."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RefDataError(f"{source}: not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RefDataError(f"{source}: must be a JSON object")
    model = Catalog if "province" in obj else Policy
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise RefDataError(f"{source}: {describe(exc)}") from None


def refdata_from(documents: Iterable[tuple[str, Policy | Catalog]]) -> RefData:
    """The reference data of (source, document) pairs; a key published twice is an error."""
    refdata = RefData()
    seen: dict[tuple[object, ...], str] = {}
    for source, doc in documents:
        if isinstance(doc, Policy):
            key: tuple[object, ...] = ("policy", doc.region, doc.scheme, doc.year)
            refdata.add_policy(doc)
        else:
            key = ("catalog", doc.province, doc.year)
            refdata.add_catalog(doc)
        if key in seen:
            raise RefDataError(f"{source}: {key[0]} {key[1:]} is also published in {seen[key]}")
        seen[key] = source
    return refdata
