"""A fake Comgate merchant API (v2.0) for tests and the sandbox: same paths, auth and error bodies.

    fake = FakeComgate(merchant="m", secret="s")
    fake.generate_day(date(2026, 11, 27), "CZK", var_symbols=["2026000101"], amounts={...})
    fake.fail_next(503, times=2)            # the next two requests answer 503
    fake.fail_next(429, retry_after=1)      # the next request answers 429 with Retry-After: 1
    app = fake.app                          # an ASGI app; serve it with uvicorn

Data are deterministic (seeded per day and currency). Payments to `var_symbols` are the ones a test
expects to match invoices; the generator adds unmatched payments, a refund, per-payment fees, a monthly
fee on the 1st of a month and now and then a chargeback, and a summary row (typ 5) per transfer.
"""

from __future__ import annotations

import base64
import binascii
import random
import string
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CENT = Decimal("0.01")
OUTGOING_ACCOUNT = {"CZK": "281481882/0300", "EUR": "CZ8703000000000281481882"}
CARD_FEE_RATE = Decimal("0.0109")
BANK_FEE_RATE = Decimal("0.0079")
MONTHLY_FEE = {"CZK": Decimal("299.00"), "EUR": Decimal("12.00")}


@dataclass(frozen=True)
class FakeRow:
    """One row of a fake payout; transferred = confirmed - fee, as in Comgate's statements."""

    row_type: int
    trans_id: str
    ref_id: str
    payer_variable_symbol: str
    confirmed_amount: Decimal
    fee: Decimal
    paid_at: datetime | None  # Prague local time, naive, as Comgate prints it
    method: str
    label: str

    @property
    def transferred_amount(self) -> Decimal:
        """What reached the merchant's account for this row."""
        return self.confirmed_amount - self.fee


@dataclass
class FakeTransfer:
    """One payout with its rows (the summary row is computed when served)."""

    transfer_id: int
    transfer_date: date
    currency: str
    account_counterparty: str
    variable_symbol: str
    rows: list[FakeRow] = field(default_factory=list)

    def summary(self) -> FakeRow:
        """The typ-5 row: sums of the other rows."""
        return FakeRow(
            row_type=5,
            trans_id="",
            ref_id="",
            payer_variable_symbol="",
            confirmed_amount=sum((r.confirmed_amount for r in self.rows), Decimal("0")),
            fee=sum((r.fee for r in self.rows), Decimal("0")),
            paid_at=None,
            method="",
            label="suma",
        )

    def list_item(self) -> dict[str, Any]:
        """This transfer as transferList shows it."""
        return {
            "transferId": self.transfer_id,
            "transferDate": self.transfer_date.isoformat(),
            "accountCounterparty": self.account_counterparty,
            "accountOutgoing": OUTGOING_ACCOUNT[self.currency],
            "variableSymbol": self.variable_symbol,
        }

    def wire_rows(self, merchant: str) -> list[dict[str, Any]]:
        """The rows as singleTransfer sends them (Czech column labels, decimal strings)."""
        return [self._wire(row, merchant) for row in [*self.rows, self.summary()]]

    def _wire(self, row: FakeRow, merchant: str) -> dict[str, Any]:
        paid = row.paid_at.strftime("%Y-%m-%d %H:%M:%S") if row.paid_at else ""
        created = (row.paid_at - timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M:%S") if row.paid_at else ""
        return {
            "typ": row.row_type,
            "Merchant": merchant if row.row_type != 5 else "suma",
            "Datum založení": created,
            "Datum zaplacení": paid,
            "Datum převodu": self.transfer_date.isoformat(),
            "ID ComGate": row.trans_id,
            "Metoda": row.method,
            "Produkt": row.label,
            "Variabilní symbol plátce": row.payer_variable_symbol,
            "Variabilní symbol převodu": self.variable_symbol,
            "ID od klienta": row.ref_id,
            "Měna": self.currency,
            "Potvrzená částka": f"{row.confirmed_amount:.2f}",
            "Převedená částka": f"{row.transferred_amount:.2f}",
            "Poplatek celkem": f"{row.fee:.2f}",
        }


@dataclass
class _Fault:
    status: int
    retry_after: int | None


class FakeComgate:
    """State of the fake (transfers, injected faults, a request log) and its ASGI app."""

    def __init__(
        self,
        merchant: str = "fake-merchant",
        secret: str = "fake-secret",
        payout_account_czk: str = "2800000000/2010",
        payout_account_eur: str = "CZ6520100000002900000000",
        seed: int = 0,
    ) -> None:
        self.merchant = merchant
        self.secret = secret
        self.accounts = {"CZK": payout_account_czk, "EUR": payout_account_eur}
        self.seed = seed
        self.transfers: dict[int, FakeTransfer] = {}
        self.requests: list[tuple[str, int]] = []  # (path, status) of every request served
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/v2.0/transferList/date/{day}.json", self._transfer_list),
                Route("/v2.0/singleTransfer/transferId/{transfer_id}.json", self._single_transfer),
            ]
        )

    # --- control ---------------------------------------------------------------------------------

    def fail_next(self, status: int, times: int = 1, retry_after: int | None = None) -> None:
        """Answer the next `times` requests with `status` (429 carries `Retry-After` when given)."""
        with self._lock:
            self._faults.extend(_Fault(status, retry_after) for _ in range(times))

    def transfers_on(self, day: date, currency: str | None = None) -> list[FakeTransfer]:
        """The transfers of `day`, optionally of one currency, in id order."""
        return sorted(
            (t for t in self.transfers.values() if t.transfer_date == day and currency in (None, t.currency)),
            key=lambda t: t.transfer_id,
        )

    def add_transfer(self, day: date, currency: str, rows: Sequence[FakeRow]) -> FakeTransfer:
        """Add a payout of `day` to the configured account of `currency`."""
        seq = len(self.transfers_on(day)) + 1
        transfer_id = int(day.strftime("%y%m%d")) * 100 + seq
        rng = random.Random(f"{self.seed}-{transfer_id}")
        transfer = FakeTransfer(
            transfer_id=transfer_id,
            transfer_date=day,
            currency=currency,
            account_counterparty=self.accounts[currency],
            variable_symbol=str(rng.randrange(10_000_000, 99_999_999)),
            rows=list(rows),
        )
        self.transfers[transfer_id] = transfer
        return transfer

    def generate_day(
        self,
        day: date,
        currency: str,
        var_symbols: Sequence[str] = (),
        amounts: Mapping[str, Decimal] | None = None,
        unmatched: int = 2,
        refunds: int = 1,
        monthly_fee: bool | None = None,
        chargeback: bool | None = None,
    ) -> FakeTransfer:
        """A realistic payout of `day`: payments to `var_symbols` (at `amounts` when given) and more."""
        rng = random.Random(f"{self.seed}-{day.isoformat()}-{currency}")
        amounts = amounts or {}
        rows = [self._payment(rng, day, currency, vs, amounts.get(vs)) for vs in var_symbols]
        rows += [
            self._payment(rng, day, currency, f"77{rng.randrange(10**7, 10**8)}", None)
            for _ in range(unmatched)
        ]
        for _ in range(refunds):
            amount = self._price(rng, currency) / 2
            rows.append(
                self._row(rng, 2, day, f"66{rng.randrange(10**7, 10**8)}", -amount.quantize(CENT), "0")
            )
        if monthly_fee if monthly_fee is not None else day.day == 1:
            rows.append(
                self._row(rng, 3, day, "", Decimal("0"), str(MONTHLY_FEE[currency]), "Měsíční poplatek")
            )
        if chargeback if chargeback is not None else rng.random() < 0.3:
            amount = -self._price(rng, currency)
            rows.append(
                self._row(rng, 4, day, f"55{rng.randrange(10**7, 10**8)}", amount, "15.00", "Chargeback")
            )
        return self.add_transfer(day, currency, rows)

    # --- generation helpers ----------------------------------------------------------------------

    @staticmethod
    def _price(rng: random.Random, currency: str) -> Decimal:
        if currency == "EUR":
            return Decimal(rng.randrange(800, 18_000)) / 100
        return Decimal(rng.randrange(150, 4_000))

    def _payment(
        self, rng: random.Random, day: date, currency: str, vs: str, amount: Decimal | None
    ) -> FakeRow:
        amount = amount if amount is not None else self._price(rng, currency)
        card = rng.random() < 0.7
        fee = (amount * (CARD_FEE_RATE if card else BANK_FEE_RATE)).quantize(CENT, ROUND_HALF_UP)
        method = "Karta online" if card else "Bankovní převod"
        return self._row(rng, 1, day, vs, amount, str(fee), method)

    def _row(
        self,
        rng: random.Random,
        row_type: int,
        day: date,
        vs: str,
        confirmed: Decimal,
        fee: str,
        method: str = "",
    ) -> FakeRow:
        paid = datetime.combine(day - timedelta(days=rng.randint(1, 3)), time(rng.randrange(7, 23)))
        paid += timedelta(minutes=rng.randrange(60), seconds=rng.randrange(60))
        alphabet = string.ascii_uppercase + string.digits
        trans_id = "-".join("".join(rng.choices(alphabet, k=4)) for _ in range(3))
        return FakeRow(
            row_type=row_type,
            trans_id=trans_id if row_type in (1, 2, 4) else "",
            ref_id=f"OBJ{vs}" if vs else "",
            payer_variable_symbol=vs,
            confirmed_amount=Decimal(confirmed),
            fee=Decimal(fee),
            paid_at=paid if row_type in (1, 2, 4) else None,
            method=method if row_type == 1 else "",
            label=method if row_type in (3, 4) else f"Objednávka {vs}" if vs else "",
        )

    # --- the HTTP side ---------------------------------------------------------------------------

    def _gate(self, request: Request) -> JSONResponse | None:
        """An injected fault or an auth failure, else None."""
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return _error(fault.status, 1500, "Injected failure of the fake Comgate.", headers)
        if self._credentials(request) != (self.merchant, self.secret):
            return _error(401, 1401, "Unauthorized access: wrong merchant or secret.")
        return None

    @staticmethod
    def _credentials(request: Request) -> tuple[str, str] | None:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            merchant, _, secret = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return merchant, secret

    def _log(self, request: Request, response: JSONResponse) -> JSONResponse:
        with self._lock:
            self.requests.append((request.url.path, response.status_code))
        return response

    async def _transfer_list(self, request: Request) -> JSONResponse:
        if (refused := self._gate(request)) is not None:
            return self._log(request, refused)
        try:
            day = date.fromisoformat(request.path_params["day"])
        except ValueError:
            return self._log(request, _error(400, 1400, "Invalid date; use YYYY-MM-DD."))
        items = [t.list_item() for t in self.transfers_on(day)]
        return self._log(request, JSONResponse(items))

    async def _single_transfer(self, request: Request) -> JSONResponse:
        if (refused := self._gate(request)) is not None:
            return self._log(request, refused)
        raw = request.path_params["transfer_id"]
        transfer = self.transfers.get(int(raw)) if raw.isdigit() else None
        if transfer is None:
            return self._log(request, _error(404, 1400, f"Transfer {raw} not found."))
        return self._log(request, JSONResponse(transfer.wire_rows(self.merchant)))


def _error(status: int, code: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=dict(headers or {}))
