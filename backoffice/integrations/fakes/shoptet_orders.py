"""The fake Shoptet's orders and stock: generated orders, order status changes, stock movements.

Kept apart from the invoice side so the warehouse jobs can extend it. Wire formats follow
`GET /api/orders`, `GET /api/orders/{code}?include=stockLocation,notes`,
`PATCH /api/orders/{code}/status` and `PATCH /api/stocks/{stockId}/movements`.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from backoffice.calendar import PRAGUE
from backoffice.integrations.fakes.shoptet_data import (
    CATALOGUE,
    CENT,
    SHIPPING,
    SHIPPING_PRICE_CZK,
    JSONObject,
    money,
    priced_line,
    product_line,
    random_address,
    random_person,
    shoptet_time,
)
from backoffice.integrations.fakes.shoptet_state import (
    BadRequest,
    FakeShoptetState,
    StatusChange,
    StockMovement,
    envelope,
    error_response,
    paged,
)

STATUS_NAMES = {
    -1: "Nevyřízená",
    -2: "Vyřizuje se",
    -3: "Vyřízená",
    -4: "Stornována",
    26: "Balí se",
    35: "Ke kontrole",
}
REMARKS = [
    "Prosím zabalit jako dárek.",
    "Doručit po 16. hodině.",
    "Bez papírové účtenky, děkuji.",
    None,
    None,
]
DEFAULT_STOCK_ID = 1


def generate_orders(seed: int, count: int, day: date, status_id: int = -2) -> dict[str, JSONObject]:
    """`count` orders in `status_id` created on `day`; ~15 % of shipped ones lack part of the address."""
    rng = random.Random(seed * 7919 + 17)
    orders: dict[str, JSONObject] = {}
    for n in range(1, count + 1):
        code = f"{day.year}1{n:05d}"
        full_name, company = random_person(rng)
        shipping = rng.choice(SHIPPING)
        delivery = None if shipping == "Osobní odběr" else random_address(rng, full_name, company)
        if delivery is not None and rng.random() < 0.15:
            delivery[rng.choice(["street", "zip", "city"])] = "" if rng.random() < 0.5 else None
        items = []
        for position, product in enumerate(rng.sample(CATALOGUE, rng.randint(1, 5)), start=1):
            item = product_line(rng, position, product, Decimal(1), rng.randint(1, 4))
            item["stockLocation"] = product.location
            items.append(item)
        if shipping in SHIPPING_PRICE_CZK:
            shipping_line = priced_line(
                len(items) + 1,
                "shipping",
                None,
                shipping,
                None,
                1,
                Decimal(21),
                SHIPPING_PRICE_CZK[shipping],
                rng,
            )
            shipping_line["stockLocation"] = None
            items.append(shipping_line)
        with_vat = sum((Decimal(i["itemPrice"]["withVat"]) for i in items), Decimal(0))
        without_vat = sum((Decimal(i["itemPrice"]["withoutVat"]) for i in items), Decimal(0))
        created = datetime.combine(day, time(6), PRAGUE) + timedelta(minutes=rng.randint(0, 600))
        orders[code] = {
            "code": code,
            "guid": str(uuid.UUID(int=rng.getrandbits(128))),
            "creationTime": shoptet_time(created),
            "changeTime": shoptet_time(created),
            "email": f"zakaznik{n}@example.cz",
            "phone": f"+420 777 {rng.randint(100, 999)} {rng.randint(100, 999)}",
            "status": {"id": status_id, "name": STATUS_NAMES.get(status_id, str(status_id))},
            "paid": rng.random() < 0.6,
            "stockId": DEFAULT_STOCK_ID,
            "billingAddress": random_address(rng, full_name, company),
            "deliveryAddress": delivery,
            "addressesEqual": False,
            "shipping": {"guid": str(uuid.UUID(int=rng.getrandbits(128))), "name": shipping},
            "paymentMethod": {"guid": str(uuid.UUID(int=rng.getrandbits(128))), "name": "Převodem"},
            "price": {
                "vat": money(with_vat - without_vat),
                "toPay": money(with_vat),
                "currencyCode": "CZK",
                "withoutVat": money(without_vat),
                "withVat": money(with_vat),
                "exchangeRate": "1.00000000",
            },
            "items": items,
            "notes": {"customerRemark": rng.choice(REMARKS), "eshopRemark": None, "trackingNumber": None},
        }
    return orders


def generate_stock(seed: int) -> dict[int, dict[str, Decimal]]:
    """Initial amounts of every catalogue product in the default stock."""
    rng = random.Random(seed * 31 + 5)
    return {DEFAULT_STOCK_ID: {p.code: Decimal(rng.randint(0, 40)) for p in CATALOGUE}}


def _order_summary(order: JSONObject) -> JSONObject:
    billing = order["billingAddress"] or {}
    return {
        "code": order["code"],
        "guid": order["guid"],
        "creationTime": order["creationTime"],
        "changeTime": order["changeTime"],
        "company": billing.get("company"),
        "fullName": billing.get("fullName"),
        "email": order["email"],
        "phone": order["phone"],
        "remark": (order.get("notes") or {}).get("customerRemark"),
        "cashDeskOrder": False,
        "paid": order["paid"],
        "status": dict(order["status"]),
        "price": dict(order["price"]),
        "shipping": dict(order["shipping"]),
        "paymentMethod": dict(order["paymentMethod"]),
    }


def _order_detail(order: JSONObject, include: set[str]) -> JSONObject:
    detail = {k: v for k, v in order.items() if k != "notes" or "notes" in include}
    if "stockLocation" not in include:
        detail["items"] = [{k: v for k, v in i.items() if k != "stockLocation"} for i in order["items"]]
    return detail


def _body_data(body: Any) -> Any:
    if not isinstance(body, dict) or "data" not in body:
        raise BadRequest("The body must be a JSON object with 'data'.", instance="data")
    return body["data"]


def order_routes(state: FakeShoptetState) -> list[Route]:
    """The order and stock endpoints over `state`."""

    async def list_orders(request: Request) -> JSONResponse:
        status = request.query_params.get("statusId")
        orders = sorted(state.orders.values(), key=lambda o: o["code"])
        if status is not None:
            orders = [o for o in orders if str(o["status"]["id"]) == status]
        return envelope(paged(request, "orders", [_order_summary(o) for o in orders]))

    async def get_order(request: Request) -> JSONResponse:
        order = state.orders.get(request.path_params["code"])
        if order is None:
            return error_response(404, "order-not-found", f"Order '{request.path_params['code']}' not found.")
        include = {p.strip() for p in request.query_params.get("include", "").split(",") if p.strip()}
        return envelope({"order": _order_detail(order, include)})

    async def set_status(request: Request) -> JSONResponse:
        code = request.path_params["code"]
        order = state.orders.get(code)
        if order is None:
            return error_response(404, "order-not-found", f"Order '{code}' not found.")
        data = _body_data(await request.json())
        status_id = data.get("statusId") if isinstance(data, dict) else None
        if not isinstance(status_id, int) or status_id not in STATUS_NAMES:
            raise BadRequest(f"Unknown statusId {status_id!r}.", instance="data.statusId")
        order["status"] = {"id": status_id, "name": STATUS_NAMES[status_id]}
        state.status_changes.append((code, status_id))
        # Shoptet mails the customer unless told not to; the flag is all the fake keeps of that.
        suppress = request.query_params.get("suppressEmailSending") == "true"
        state.status_requests.append(StatusChange(code, status_id, suppress))
        return envelope({"order": _order_detail(order, set())})

    async def stock_movements(request: Request) -> JSONResponse:
        stock_id = int(request.path_params["stock_id"])
        stock = state.stock.get(stock_id)
        if stock is None:
            return error_response(404, "stock-not-found", f"Stock {stock_id} not found.")
        data = _body_data(await request.json())
        if not isinstance(data, list) or not data:
            raise BadRequest("'data' must be a non-empty list of movements.", instance="data")
        moves: list[tuple[str, Decimal]] = []
        for n, move in enumerate(data):
            code = move.get("productCode") if isinstance(move, dict) else None
            if code not in stock:
                raise BadRequest(
                    f"Product '{code}' is not in stock {stock_id}.", instance=f"data.{n}.productCode"
                )
            try:
                moves.append((code, Decimal(str(move["amountChange"]))))
            except (KeyError, InvalidOperation):
                raise BadRequest(
                    "amountChange must be a number.", instance=f"data.{n}.amountChange"
                ) from None
        # All or nothing: a rejected request changes no stock (checked above, applied here).
        for code, change in moves:
            stock[code] = (stock[code] + change).quantize(CENT)
            state.stock_ledger.append(StockMovement(stock_id, code, change, datetime.now(UTC)))
        return envelope(None)

    return [
        Route("/api/orders", list_orders, methods=["GET"]),
        Route("/api/orders/{code}", get_order, methods=["GET"]),
        Route("/api/orders/{code}/status", set_status, methods=["PATCH"]),
        Route("/api/stocks/{stock_id:int}/movements", stock_movements, methods=["PATCH"]),
    ]
