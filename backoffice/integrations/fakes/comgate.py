"""A fake Comgate merchant API (v2.0) for tests and the sandbox: same paths, auth and error bodies.

    fake = FakeComgate(merchant="m", secret="s")
    fake.generate_day(date(2026, 11, 27), "CZK", var_symbols=["2026000101"], amounts={...})
    fake.fail_next(503, times=2)            # the next two requests answer 503
    fake.fail_next(429, retry_after=1)      # the next request answers 429 with Retry-After: 1
    app = fake.app                          # an ASGI app; serve it with uvicorn

Rows speak the statement CSV's columns (see comgate_data); payout accounts are in the domestic
`number/bank` form for both currencies, as Comgate's examples show. Data are deterministic (seeded
per day and currency). Payments to `var_symbols` are the ones a test
expects to match invoices; the generator adds unmatched payments, a refund, per-payment fees, a monthly
fee on the 1st of a month and now and then a chargeback, and a summary row (typ 5) per transfer.
`seed_from_invoices` pays the fake Shoptet's invoices (its wire format) the day after they were issued.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import random
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from backoffice.integrations.fakes.comgate_data import MINUTE_DATES, FakeRow, FakeTransfer, generate_rows

DEFAULT_MERCHANT = "fake-merchant"
DEFAULT_SECRET = "fake-secret"


@dataclass
class _Fault:
    status: int
    retry_after: int | None


class FakeComgate:
    """State of the fake (transfers, injected faults, a request log) and its ASGI app."""

    def __init__(
        self,
        merchant: str = DEFAULT_MERCHANT,
        secret: str = DEFAULT_SECRET,
        payout_account_czk: str = "2800000000/2010",
        payout_account_eur: str = "2900000000/2010",
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
        if currency in MINUTE_DATES:
            # This payout prints times to the minute; its data must say no more than it prints.
            rows = [replace(r, paid_at=r.paid_at.replace(second=0)) if r.paid_at else r for r in rows]
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
        ref_ids: Mapping[str, str] | None = None,
        unmatched: int = 2,
        refunds: int = 1,
        monthly_fee: bool | None = None,
        chargeback: bool | None = None,
    ) -> FakeTransfer:
        """A realistic payout of `day`: payments to `var_symbols` (at `amounts` when given) and more.

        `monthly_fee` defaults to "on the 1st", `chargeback` to a 30 % chance (seeded).
        """
        rng = random.Random(f"{self.seed}-{day.isoformat()}-{currency}")
        rows = generate_rows(
            rng,
            day,
            currency,
            var_symbols,
            amounts or {},
            ref_ids or {},
            unmatched,
            refunds,
            monthly_fee if monthly_fee is not None else day.day == 1,
            chargeback if chargeback is not None else rng.random() < 0.3,
        )
        return self.add_transfer(day, currency, rows)

    def seed_from_invoices(
        self, invoices: Iterable[Mapping[str, Any]], only_comgate: bool = True
    ) -> list[FakeTransfer]:
        """Pay the fake Shoptet's invoices (wire format) by Comgate on the day after their issue.

        With `only_comgate` only invoices whose billing method names Comgate are paid; the payout
        of each (day, currency) also carries unmatched payments, a refund and fees.
        """
        groups: dict[tuple[date, str], list[Mapping[str, Any]]] = {}
        for invoice in invoices:
            method = str((invoice.get("billingMethod") or {}).get("name", ""))
            if only_comgate and "comgate" not in method.lower():
                continue
            issued = datetime.strptime(str(invoice["creationTime"]), "%Y-%m-%dT%H:%M:%S%z").date()
            groups.setdefault((issued + timedelta(days=1), invoice["price"]["currencyCode"]), []).append(
                invoice
            )
        transfers = []
        for (day, currency), paid in sorted(groups.items()):
            symbols = [str(i["varSymbol"]) for i in paid]
            transfers.append(
                self.generate_day(
                    day,
                    currency,
                    var_symbols=symbols,
                    amounts={str(i["varSymbol"]): Decimal(i["price"]["toPay"]) for i in paid},
                    ref_ids={str(i["varSymbol"]): str(i["orderCode"]) for i in paid},
                )
            )
        return transfers

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


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a fake Comgate: `python -m backoffice.integrations.fakes.comgate --port 8082 --seed 1`.

    With `--shoptet-seed` it pays the invoices the fake Shoptet generates with that seed and days.
    """
    import uvicorn

    from backoffice.integrations.fakes.shoptet import default_days
    from backoffice.integrations.fakes.shoptet_data import generate_invoices

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--merchant", default=DEFAULT_MERCHANT)
    parser.add_argument("--secret", default=DEFAULT_SECRET)
    parser.add_argument("--payout-account-czk", default="2800000000/2010")
    parser.add_argument("--payout-account-eur", default="2900000000/2010")
    parser.add_argument("--shoptet-seed", type=int, default=1)
    parser.add_argument("--day", type=date.fromisoformat, action="append", help="a day with invoices")
    parser.add_argument("--invoices-per-day", type=int, default=20)
    args: Any = parser.parse_args(argv)
    fake = FakeComgate(
        args.merchant, args.secret, args.payout_account_czk, args.payout_account_eur, seed=args.seed
    )
    days = list(args.day or default_days())
    fake.seed_from_invoices(generate_invoices(args.shoptet_seed, days, args.invoices_per_day).values())
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
