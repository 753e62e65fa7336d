"""One picking-list run: list → claim → fetch → check address → PDF per shipping → print → move.

Order of the steps is chosen for the paper, not the database: a PDF is written and sent to the
printer *before* its orders are marked printed, so a run that dies in between leaves them
`claimed` and a later run (after the claim lease, or a retry of the same flow run at once)
prints them again — twice on paper after a crash beats never. No order leaves "to pick" without
paper: when the printer refuses a PDF, its orders stay `undelivered` (not moved), the run fails
naming the file, and the next run sends that same file again before it moves them. The Shoptet
status moves come last; an order printed but not moved is `unmoved`, and the next run only
moves it.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from backoffice.calendar import to_prague
from backoffice.integrations.shoptet import JSONObject, ShoptetClient, ShoptetError, ShoptetNotFound
from backoffice.settings import Settings
from backoffice.warehouse.picking import PickingOrder, fold, group_by_shipping, parse_order, summarize
from backoffice.warehouse.picking_pdf import ListHeader, render_picking_list
from backoffice.warehouse.picking_store import ON_PAPER, Claim, PickingStore

LP_TIMEOUT_SECONDS = 60


class PrintFailed(Exception):
    """`lp` is missing or refused the job; the PDF is still kept under the output folder."""


@dataclass(frozen=True)
class PickingFile:
    """One shipping method's list: where it is kept and whether the printer took it."""

    shipping: str
    path: Path
    orders: tuple[str, ...]
    printed_on: str | None
    printer_error: str | None


@dataclass(frozen=True)
class OrderToCheck:
    """An order moved to the check status instead of being printed."""

    code: str
    customer: str
    problems: tuple[str, ...]


@dataclass
class PickingResult:
    """What a run did."""

    files: list[PickingFile] = field(default_factory=list)
    to_check: list[OrderToCheck] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    held_elsewhere: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No order failed a step and every list reached the printer (when one is set)."""
        return not self.errors and not any(f.printer_error for f in self.files)

    @property
    def problems(self) -> list[str]:
        """What went wrong, each unprinted file named by its path (for the failure message)."""
        unprinted = [f"{f.path} not printed: {f.printer_error}" for f in self.files if f.printer_error]
        return unprinted + self.errors


def slug(text: str) -> str:
    """A file-name-safe ASCII form: `Osobní odběr` → `osobni-odber`."""
    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-") or "x"


def send_to_printer(path: Path, printer: str, title: str) -> None:
    """Queue `path` on CUPS printer `printer` with `lp -d`; PrintFailed when that fails."""
    try:
        done = subprocess.run(
            ["lp", "-d", printer, "-t", title, str(path)],
            capture_output=True,
            text=True,
            timeout=LP_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError as exc:
        raise PrintFailed("`lp` is not installed; install the CUPS client (cups-client).") from exc
    except subprocess.TimeoutExpired as exc:
        raise PrintFailed(f"`lp -d {printer}` did not finish in {LP_TIMEOUT_SECONDS} s.") from exc
    if done.returncode != 0:
        raise PrintFailed(f"`lp -d {printer}` failed ({done.returncode}): {done.stderr.strip()[:300]}")


def _fetch(client: ShoptetClient, codes: list[str]) -> dict[str, JSONObject | ShoptetError]:
    def one(code: str) -> JSONObject | ShoptetError:
        try:
            return client.get_order(code, include="stockLocation,notes")
        except ShoptetError as exc:
            return exc

    return dict(zip(codes, client.concurrently(one, codes), strict=True))


def undelivered_files(claims: list[Claim]) -> dict[Path, list[Claim]]:
    """The still existing PDFs that an earlier run wrote but could not print, with their claims."""
    files: dict[Path, list[Claim]] = {}
    for claim in claims:
        if (pdf := claim.undelivered_file) and Path(pdf).is_file():
            files.setdefault(Path(pdf), []).append(claim)
    return files


class PickingRun:
    """The steps of one run, sharing the client, the claims and what happened so far."""

    def __init__(
        self, client: ShoptetClient, claims: PickingStore, settings: Settings, batch: str, run_id: str
    ) -> None:
        self.client, self.claims, self.settings = client, claims, settings
        self.batch, self.run_id = batch, run_id
        self.result = PickingResult()

    def run(self, now: datetime | None = None) -> PickingResult:
        """Do the whole run and return what it did."""
        now = now or datetime.now(UTC)
        listed = [str(o["code"]) for o in self.client.list_orders(self.settings.picking_status_id)]
        claimed = self.claims.claim(listed, self.batch, self.run_id, now)
        mine = {c.order_code for c in claimed}
        self.result.held_elsewhere = [code for code in listed if code not in mine]
        undelivered = undelivered_files(claimed)
        # The same file again, not a new one: the warehouse may hold part of it already.
        for pdf, waiting in undelivered.items():
            self._deliver(pdf, waiting[0].shipping or "", tuple(c.order_code for c in waiting))
        resent = {c.order_code for waiting in undelivered.values() for c in waiting}
        # An undelivered order whose file is gone is printed afresh like a new one.
        fresh = [c for c in claimed if c.order_code not in resent and c.previous not in ON_PAPER]
        orders = self._pickable(fresh)
        for shipping, group in group_by_shipping(orders).items():
            self._print(shipping, group, now)
        for claim in claimed:
            if claim.previous in ON_PAPER:
                self._move(claim.order_code, self.settings.packing_status_id, "done")
        return self.result

    def _pickable(self, claims: list[Claim]) -> list[PickingOrder]:
        details = _fetch(self.client, [c.order_code for c in claims])
        orders = []
        for claim in claims:
            code, detail = claim.order_code, details[claim.order_code]
            if isinstance(detail, ShoptetNotFound):
                self.claims.release(code, self.run_id, "skipped", detail.message)
                self.result.released.append(code)
            elif isinstance(detail, ShoptetError):
                # Nothing printed yet: give the order back at once so a re-run can take it.
                self.claims.release(code, self.run_id, claim.release_status, detail.message)
                self.result.errors.append(f"{code}: {detail.message}")
            elif (order := parse_order(detail)).status_id not in (None, self.settings.picking_status_id):
                # Listed before another run (or a person) moved it on: nothing to pick any more.
                self.claims.release(code, self.run_id, claim.release_status)
                self.result.released.append(code)
            elif order.address_problems:
                self.result.to_check.append(OrderToCheck(code, order.customer, order.address_problems))
                self._move(code, self.settings.check_status_id, "check", claim.release_status)
            else:
                orders.append(order)
        return orders

    def _print(self, shipping: str, orders: list[PickingOrder], now: datetime) -> None:
        local = to_prague(now)
        folder = self.settings.output_dir / "picking" / local.strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{local:%H%M%S}-{slug(self.batch)}-{slug(shipping)}-{slug(self.run_id)[:8]}.pdf"
        path = folder / name
        header = ListHeader(shipping, self.batch, local)
        path.write_bytes(render_picking_list(header, orders, summarize(orders)))
        self._deliver(path, shipping, tuple(o.code for o in orders))

    def _deliver(self, path: Path, shipping: str, codes: tuple[str, ...]) -> None:
        """Send `path` to the printer (when one is set); move its orders only once it took it."""
        printer = self.settings.printer
        if printer:
            try:
                send_to_printer(path, printer, f"Picking {shipping} {self.batch}")
            except PrintFailed as exc:
                # Not on paper: the orders stay "to pick" and the next run sends this file again.
                self.claims.mark_undelivered(codes, self.run_id, shipping, str(path), str(exc))
                self.result.files.append(PickingFile(shipping, path, codes, None, str(exc)))
                return
        self.claims.mark_printed(codes, self.run_id, shipping, str(path))
        self.result.files.append(PickingFile(shipping, path, codes, printer, None))
        for code in codes:
            self._move(code, self.settings.packing_status_id, "done")

    def _move(self, code: str, status_id: int, final: str, release_status: str = "skipped") -> None:
        try:
            self.client.set_order_status(
                code, status_id, suppress_email=self.settings.shoptet_suppress_status_emails
            )
        except ShoptetError as exc:
            if final == "check":  # not printed: free it for the next run
                self.claims.release(code, self.run_id, release_status, exc.message)
            else:  # printed: `unmoved`, the next run only moves it
                self.claims.give_up_move(code, self.run_id, exc.message)
            self.result.errors.append(f"{code}: could not move to status {status_id}: {exc.message}")
            return
        self.claims.finish(code, self.run_id, final)
        if final == "done":
            self.result.moved.append(code)


def print_picking_lists(
    client: ShoptetClient, claims: PickingStore, settings: Settings, batch: str, run_id: str
) -> PickingResult:
    """Print the picking lists of every order in the "to pick" status this run can claim."""
    return PickingRun(client, claims, settings, batch, run_id).run()


def result_markdown(result: PickingResult, batch: str) -> str:
    """The run's markdown artifact: the files (linked), orders to check, what went wrong."""
    lines = [f"# Picking lists ({batch})", ""]
    if not result.files:
        lines.append("No new order to pick.")
    for f in result.files:
        where = f"printed on `{f.printed_on}`" if f.printed_on else "kept only (no printer set)"
        if f.printer_error:
            where = (
                f"**not printed**: {f.printer_error} Its orders stay to pick; "
                "the next run sends this file again before moving them."
            )
        lines.append(
            f"- **{f.shipping}**: {len(f.orders)} orders, [{f.path.name}]({f.path.as_uri()}) {where}"
        )
        lines.append(f"  - `{f.path}`")
    lines += ["", f"Moved to packing: {len(result.moved)} orders."]
    if result.to_check:
        lines += ["", "## Orders moved to the check status (incomplete address)", ""]
        lines += [f"- `{o.code}` {o.customer}: {', '.join(o.problems)}" for o in result.to_check]
    if result.held_elsewhere:
        lines += ["", f"Held by another run (not printed here): {', '.join(result.held_elsewhere)}"]
    if result.errors:
        lines += ["", "## Errors", ""] + [f"- {e}" for e in result.errors]
    return "\n".join(lines) + "\n"
