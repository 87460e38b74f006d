"""Netting of one clearing period, as `clearing.md` defines it.

Pure functions: results in, statement out. The offline `clearing clear`, the ledger's period
close and the tests all call these, so there is one netting in the product.

With one-stop settlement (`tiers.md`) what the home province owes is `due_fen` — the fund pay
plus the serious-illness and assistance pays — and digests, net positions and transfers are on
it. A result without the tier fields (reference data without tiers) owes its `fund_pay_fen`.
Obligations carry `critical_pay_fen`, `assistance_pay_fen` and `due_fen` when some cleared
result of the input carries them; a statement of results without them is exactly that of
`clearing.md`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NotRequired, TypedDict

from clearing.core.jsonish import JSONMapping
from clearing.core.periods import CLEARED


class Obligation(TypedDict):
    """What one payer owes one payee for a period (`clearing.md`); the tier sums with tiers."""

    payer: str
    payee: str
    settlements: int
    reversals: int
    total_fen: int
    fund_pay_fen: int
    critical_pay_fen: NotRequired[int]
    assistance_pay_fen: NotRequired[int]
    due_fen: NotRequired[int]
    personal_pay_fen: int
    digest: str


# `from` is a keyword: the functional form.
Transfer = TypedDict("Transfer", {"from": str, "to": str, "amount_fen": int})


class Statement(TypedDict):
    """The statement of one period, as `clearing clear` prints it and the ledger issues it."""

    period: str
    obligations: list[Obligation]
    net_positions: dict[str, int]
    transfers: list[Transfer]


def due_of(result: JSONMapping) -> int:
    """What the payer owes for a result (or an obligation): `due_fen`, which is `fund_pay_fen`
    without tiers."""
    due: int | None = result.get("due_fen")
    if due is None:
        fund_pay: int = result["fund_pay_fen"]
        return fund_pay
    return due


def digest_line(result: JSONMapping) -> str:
    """The line a result contributes to its obligation's digest (without the newline)."""
    if result["status"] == "priced":
        return f"S|{result['settlement_id']}|{due_of(result)}"
    return f"R|{result['reversal_id']}|{due_of(result)}"


def digest(lines: Iterable[str]) -> str:
    """SHA-256 over the lines sorted as UTF-8 byte strings, each followed by a newline."""
    encoded = sorted(line.encode("utf-8") for line in lines)
    return hashlib.sha256(b"".join(line + b"\n" for line in encoded)).hexdigest()


@dataclass
class _Obligation:
    settlements: int = 0
    reversals: int = 0
    total_fen: int = 0
    fund_pay_fen: int = 0
    critical_pay_fen: int = 0
    assistance_pay_fen: int = 0
    due_fen: int = 0
    personal_pay_fen: int = 0

    def __post_init__(self) -> None:
        self.lines: list[str] = []

    def as_json(self, payer: str, payee: str, tiers: bool) -> Obligation:
        if tiers:
            return {
                "payer": payer,
                "payee": payee,
                "settlements": self.settlements,
                "reversals": self.reversals,
                "total_fen": self.total_fen,
                "fund_pay_fen": self.fund_pay_fen,
                "critical_pay_fen": self.critical_pay_fen,
                "assistance_pay_fen": self.assistance_pay_fen,
                "due_fen": self.due_fen,
                "personal_pay_fen": self.personal_pay_fen,
                "digest": digest(self.lines),
            }
        return {
            "payer": payer,
            "payee": payee,
            "settlements": self.settlements,
            "reversals": self.reversals,
            "total_fen": self.total_fen,
            "fund_pay_fen": self.fund_pay_fen,
            "personal_pay_fen": self.personal_pay_fen,
            "digest": digest(self.lines),
        }


def obligation_lines(results: Iterable[JSONMapping]) -> dict[tuple[str, str], list[str]]:
    """Digest lines of every obligation, keyed by (payer, payee): what two sides exchange."""
    lines: dict[tuple[str, str], list[str]] = {}
    for result in results:
        if result["status"] in CLEARED:
            lines.setdefault((result["payer"], result["payee"]), []).append(digest_line(result))
    return lines


def build_obligations(results: Iterable[JSONMapping]) -> list[Obligation]:
    """One obligation per (payer, payee) pair with at least one priced or reversed result.

    The tier sums are included when some cleared result carries `due_fen` (see the module)."""
    pairs: dict[tuple[str, str], _Obligation] = {}
    tiers = False
    for result in results:
        status = result["status"]
        if status not in CLEARED:
            continue
        ob = pairs.setdefault((result["payer"], result["payee"]), _Obligation())
        if status == "priced":
            ob.settlements += 1
        else:
            ob.reversals += 1
        ob.total_fen += result["total_fen"]
        ob.fund_pay_fen += result["fund_pay_fen"]
        if result.get("due_fen") is not None:
            tiers = True
            ob.critical_pay_fen += result["critical_pay_fen"]
            ob.assistance_pay_fen += result["assistance_pay_fen"]
        ob.due_fen += due_of(result)
        ob.personal_pay_fen += result["personal_pay_fen"]
        ob.lines.append(digest_line(result))
    return [ob.as_json(payer, payee, tiers) for (payer, payee), ob in sorted(pairs.items())]


def net_positions(obligations: Iterable[JSONMapping]) -> dict[str, int]:
    """Received minus owed per province, on `due_fen` (`fund_pay_fen` for an obligation without
    the tier fields); every province of an obligation appears, zero or not."""
    positions: dict[str, int] = {}
    for ob in obligations:
        owed = due_of(ob)
        positions[ob["payee"]] = positions.get(ob["payee"], 0) + owed
        positions[ob["payer"]] = positions.get(ob["payer"], 0) - owed
    return dict(sorted(positions.items()))


def settle(positions: Mapping[str, int]) -> list[Transfer]:
    """Transfers that bring every position to zero.

    Greedy matching of the largest debtor with the largest creditor: every transfer closes at
    least one of the two and the last closes both, so there are at most (non-zero − 1)
    transfers. Ties are broken by province code, so the answer is deterministic.
    """
    if sum(positions.values()) != 0:
        raise ValueError("net positions do not sum to zero")
    debtors = sorted(((-v, p) for p, v in positions.items() if v < 0), key=lambda t: (-t[0], t[1]))
    creditors = sorted(((v, p) for p, v in positions.items() if v > 0), key=lambda t: (-t[0], t[1]))
    transfers: list[Transfer] = []
    i = j = 0
    owe, debtor = debtors[0] if debtors else (0, "")
    due, creditor = creditors[0] if creditors else (0, "")
    while i < len(debtors) and j < len(creditors):
        amount = min(owe, due)
        transfers.append({"from": debtor, "to": creditor, "amount_fen": amount})
        owe -= amount
        due -= amount
        if owe == 0:
            i += 1
            if i < len(debtors):
                owe, debtor = debtors[i]
        if due == 0:
            j += 1
            if j < len(creditors):
                due, creditor = creditors[j]
    return transfers


def build_statement(period: str, results: Iterable[JSONMapping]) -> Statement:
    """The statement of `clearing.md` for the results cleared in `period`."""
    obligations = build_obligations(results)
    positions = net_positions(obligations)
    return {
        "period": period,
        "obligations": obligations,
        "net_positions": positions,
        "transfers": settle(positions),
    }


def check_transfers(positions: Mapping[str, int], transfers: Iterable[JSONMapping]) -> list[str]:
    """Problems with a transfer list against net positions; empty when it settles them all."""
    transfers = list(transfers)
    problems: list[str] = []
    balance = dict.fromkeys(positions, 0)
    for t in transfers:
        if t["amount_fen"] <= 0:
            problems.append(f"transfer {t} is not positive")
        balance[t["to"]] = balance.get(t["to"], 0) + t["amount_fen"]
        balance[t["from"]] = balance.get(t["from"], 0) - t["amount_fen"]
    for province in sorted(set(balance) | set(positions)):
        if balance.get(province, 0) != positions.get(province, 0):
            problems.append(
                f"{province}: transfers give {balance.get(province, 0)}, "
                f"position is {positions.get(province, 0)}"
            )
    nonzero = sum(1 for v in positions.values() if v)
    if len(transfers) > max(0, nonzero - 1):
        problems.append(f"{len(transfers)} transfers for {nonzero} non-zero positions")
    return problems
