"""The picking list as an A4 PDF (fpdf2): one per shipping method, orders first, then the summary.

Set in DejaVu Sans (vendored under `backoffice/warehouse/fonts`, with its licence) because the core PDF
fonts cannot show Czech letters such as ř, ů or ě. Sizes are chosen for paper: 10 pt body, 12 pt
order headings, a tick box (☐) in front of every order and line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from backoffice.warehouse.picking import PickingItem, PickingOrder, SummaryLine, format_quantity

FONT_DIR = Path(__file__).parent / "fonts"
FONT = "DejaVu"
MARGIN_MM = 12.0
LINE_MM = 6.0
BOX = "\u2610"  # ☐
DASH = "\u2013"  # an en dash, for the printout
# Item table: tick, code, name, variant, quantity, position, note (sums to the 186 mm text width).
ITEM_WIDTHS = (7, 26, 63, 30, 12, 24, 24)
ITEM_HEADINGS = ("", "Kód", "Název", "Varianta", "Ks", "Pozice", "Pozn.")
SUMMARY_WIDTHS = (7, 26, 26, 67, 30, 16, 14)
SUMMARY_HEADINGS = ("", "Pozice", "Kód", "Název", "Varianta", "Celkem", "Obj.")


@dataclass(frozen=True)
class ListHeader:
    """What the top of every page says."""

    shipping: str
    batch: str
    printed_at: datetime


def block_height(order: PickingOrder) -> float:
    """The height (mm) an order needs: heading, address, remarks, table heading and lines."""
    return LINE_MM * (3 + len(order.remarks) + len(order.items)) + 4


def starts_new_page(y: float, height: float, page_top: float, page_bottom: float) -> bool:
    """Whether a block of `height` at `y` should start on a fresh page.

    Only when it does not fit in the rest of this page but does fit on an empty one; a block
    longer than a page starts where it is and flows over (the table repeats its headings).
    """
    fits_here = y + height <= page_bottom
    fits_on_empty_page = page_top + height <= page_bottom
    return not fits_here and fits_on_empty_page and y > page_top


class PickingPDF(FPDF):
    """A4 portrait with the list's header and page numbers on every page."""

    def __init__(self, header: ListHeader, order_count: int) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.list_header = header
        self.order_count = order_count
        # The order whose item table is being drawn: a page break inside it names it on the next page.
        self.continued_order: str | None = None
        self.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
        self.set_auto_page_break(auto=True, margin=MARGIN_MM + 6)
        self.set_title(f"Vychystávací seznam {DASH} {header.shipping}")
        self.set_creator("backoffice-tasks")

    def header(self) -> None:
        h = self.list_header
        self.set_font(FONT, "B", 14)
        self.cell(self.epw * 0.6, 8, f"Vychystávání: {h.shipping}")
        self.set_font(FONT, "", 9)
        stamp = h.printed_at.strftime("%d.%m.%Y %H:%M")
        self.cell(self.epw * 0.4, 8, f"{h.batch} · {stamp} · {self.order_count} obj.", align="R")
        self.ln(9)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(2)
        if self.continued_order:
            self.set_font(FONT, "B", 10)
            self.cell(0, 6, f"{self.continued_order} (pokračování)", new_x="LMARGIN", new_y="NEXT")

    def footer(self) -> None:
        self.set_y(-MARGIN_MM - 2)
        self.set_font(FONT, "", 8)
        self.cell(0, 5, f"Strana {self.page_no()}/{{nb}}", align="C")

    @property
    def page_top(self) -> float:
        """Where content starts below the header."""
        return self.t_margin + 11

    def order_block(self, order: PickingOrder) -> None:
        """An order: tick box, code and customer, shipping and address, remarks, its items."""
        if starts_new_page(self.get_y(), block_height(order), self.page_top, self.page_break_trigger):
            self.add_page()
        self.set_font(FONT, "B", 12)
        who = order.customer + (
            f" ({order.company})" if order.company and order.company != order.customer else ""
        )
        self.multi_cell(0, 7, f"{BOX} {order.code} {DASH} {who}", new_x="LMARGIN", new_y="NEXT")
        self.set_font(FONT, "", 9)
        contact = f" · tel. {order.phone}" if order.phone else ""
        self.multi_cell(
            0,
            5,
            f"Doprava: {order.shipping} · {order.address or 'bez adresy'}{contact}",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        self.set_font(FONT, "B", 9)
        for remark in order.remarks:
            self.multi_cell(0, 5, f"Poznámka {DASH} {remark}", new_x="LMARGIN", new_y="NEXT")
        self.ln(1)
        self.continued_order = order.code
        self._table(ITEM_HEADINGS, ITEM_WIDTHS, [_item_row(item) for item in order.items])
        self.continued_order = None
        self.ln(4)

    def summary(self, lines: Sequence[SummaryLine]) -> None:
        """Totals per product in picking-walk order, on a page of its own."""
        self.add_page()
        self.set_font(FONT, "B", 12)
        total = sum((line.quantity for line in lines), Decimal(0))
        self.cell(0, 8, f"Souhrn podle produktu {DASH} {len(lines)} produktů, {format_quantity(total)} ks")
        self.ln(9)
        rows = [
            (
                BOX,
                line.position or DASH,
                line.code,
                line.name,
                line.variant or "",
                format_quantity(line.quantity),
                str(line.orders),
            )
            for line in lines
        ]
        self._table(SUMMARY_HEADINGS, SUMMARY_WIDTHS, rows)

    def _table(self, headings: Sequence[str], widths: Sequence[int], rows: Sequence[Sequence[str]]) -> None:
        self.set_font(FONT, "", 9)
        with self.table(
            col_widths=widths,
            width=self.epw,
            line_height=5,
            headings_style=FontFace(emphasis="BOLD", fill_color=(230, 230, 230)),
            text_align="LEFT",
        ) as table:
            table.row(list(headings))
            for values in rows:
                table.row(list(values))


def _item_row(item: PickingItem) -> tuple[str, ...]:
    return (
        BOX,
        item.code,
        item.name,
        item.variant or "",
        format_quantity(item.quantity),
        item.position or DASH,
        item.note or "",
    )


def render_picking_list(
    header: ListHeader, orders: Sequence[PickingOrder], summary: Sequence[SummaryLine]
) -> bytes:
    """The PDF of one shipping method's picking list."""
    pdf = PickingPDF(header, len(orders))
    pdf.alias_nb_pages()
    pdf.add_page()
    for order in orders:
        pdf.order_block(order)
    pdf.summary(summary)
    return bytes(pdf.output())
