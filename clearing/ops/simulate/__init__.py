"""`clearing simulate`: a deterministic synthetic bundle shaped like national cross-province flows.

A bundle has the public sample's form: `refdata/policies/*.json`, `refdata/catalogs/*.json` and
`events.jsonl`. The events are mostly settlements that price cleanly, flowing from populous
origin provinces to the big treatment provinces, plus every kind of trouble the clearinghouse
must survive: unfiled visits, same-province claims, unknown and repeated reversals, exact and
conflicting duplicates, and malformed lines of many sorts, and a few cases for fund-safety
monitoring to flag (with near misses it must not). Most policies carry the one-stop
settlement blocks (serious-illness insurance, medical assistance) and a few percent of persons
are named for medical assistance by their home province, before some of their settlements.

Everything comes from `random.Random` instances seeded from the seed, so a seed names one bundle
byte for byte. Lines are written as they are made and the state kept is bounded (a pool of active
persons, small rings of recent settlements), so a million events need no more memory than a
thousand. Each line's intended outcome is known when it is made; `--intents` writes it beside the
events so that a pricing engine can be checked line by line.

The package's modules, from the bottom up: `weighted` (weighted picks), `geography`
(provinces and hospitals), `tiers` (the policies' serious-illness and assistance blocks),
`refdata` (the generated policies and catalogs), `clock` (time and timestamps), `ids`,
`people` (persons, filings and assistance records), `items` (the line items of a visit),
`events` (valid events), `outcomes` (each line's intended fate), `mutators` (malformed lines),
`history` (what later lines refer back to), `plants` (planted fund-safety monitoring cases and
their near misses), `stream` (the `Simulator`), `bundle` (writing it all) and `cli`
(`clearing simulate`).
"""

from clearing.ops.simulate.bundle import generate_bundle
from clearing.ops.simulate.geography import PROVINCES

__all__ = ["PROVINCES", "generate_bundle"]
