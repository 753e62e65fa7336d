"""Shoptet's wire contract: the fake answers as the OpenAPI says, and our client reads the spec's examples.

The schemas in `shoptet/` are derived from shoptet/developers `openapi/openapi.yaml` (each names its
path in `$comment`): the fields our code reads are required, with the spec's types and patterns,
and each carries one example assembled from the spec's own field examples.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from backoffice.accounting.shoptet_import import parse_invoice
from backoffice.calendar import PRAGUE
from backoffice.integrations.fakes.shoptet import DEFAULT_TOKEN, FakeShoptet
from backoffice.integrations.shoptet import ShoptetClient, ShoptetError
from backoffice.warehouse.picking import parse_order
from tests.servers import serve

SCHEMAS = Path(__file__).parent / "shoptet"
HEADERS = {"Shoptet-Private-API-Token": DEFAULT_TOKEN, "Content-Type": "application/vnd.shoptet.v1.0"}
DAY = date(2024, 5, 6)


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema `shoptet/<name>.json`."""
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.json").read_text())
    return loaded


def check(name: str, body: Any) -> None:
    """Fail with every violation of schema `name` in `body`."""
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in Draft202012Validator(schema(name)).iter_errors(body)
    ]
    assert errors == [], f"{name}: {errors[:5]}"


@pytest.mark.parametrize("name", sorted(p.stem for p in SCHEMAS.glob("*.json")))
def test_schemas_are_valid_name_their_source_and_accept_their_example(name: str) -> None:
    Draft202012Validator.check_schema(schema(name))
    assert "shoptet/developers openapi/openapi.yaml" in schema(name)["$comment"]
    for example in schema(name)["examples"]:
        check(name, example)


@pytest.fixture
def fake() -> FakeShoptet:
    """A fake Shoptet with a day of invoices and a few orders."""
    return FakeShoptet(11, days=[DAY], invoices_per_day=60, orders=8)


def test_every_answer_of_the_fake_follows_the_spec(fake: FakeShoptet) -> None:
    with serve(fake.app) as url, httpx.Client(base_url=url, headers=HEADERS) as http:
        start, end = datetime.combine(DAY, time(0), PRAGUE), datetime.combine(DAY, time(23, 59, 59), PRAGUE)
        query = {"creationTimeFrom": start.strftime("%Y-%m-%dT%H:%M:%S%z"), "itemsPerPage": 1000}
        query["creationTimeTo"] = end.strftime("%Y-%m-%dT%H:%M:%S%z")
        for page in (1, 2):
            check("invoices-list", http.get("/api/invoices", params={**query, "page": page}).json())
        for code in fake.state.invoices:
            check("invoice-detail", http.get(f"/api/invoices/{code}").json())
        check("orders-list", http.get("/api/orders", params={"statusId": -2}).json())
        for code in fake.state.orders:
            check(
                "order-detail",
                http.get(f"/api/orders/{code}", params={"include": "stockLocation,notes"}).json(),
            )
        code = next(iter(fake.state.orders))
        check(
            "order-status", http.patch(f"/api/orders/{code}/status", json={"data": {"statusId": 26}}).json()
        )
        product = next(iter(fake.state.stock[1]))
        moved = http.patch(
            "/api/stocks/1/movements", json={"data": [{"productCode": product, "amountChange": 1}]}
        )
        check("stock-movements", moved.json())
    assert {r.status for r in fake.state.requests} == {200}


def _examples_app() -> Starlette:
    def answer(name: str) -> Any:
        async def endpoint(request: Request) -> JSONResponse:
            return JSONResponse(schema(name)["examples"][0])

        return endpoint

    return Starlette(
        routes=[
            Route("/api/invoices", answer("invoices-list")),
            Route("/api/invoices/{code}", answer("invoice-detail")),
            Route("/api/orders", answer("orders-list")),
            Route("/api/orders/{code}", answer("order-detail")),
            Route("/api/orders/{code}/status", answer("order-status"), methods=["PATCH"]),
            Route("/api/stocks/{stock_id}/movements", answer("stock-movements"), methods=["PATCH"]),
        ]
    )


@pytest.fixture
def examples_client() -> Iterator[ShoptetClient]:
    """Our client against a server that answers each endpoint with the spec's example."""
    with serve(_examples_app()) as url, ShoptetClient(url, DEFAULT_TOKEN) as client:
        yield client


def test_our_client_reads_the_specs_examples(examples_client: ShoptetClient) -> None:
    start = datetime.combine(DAY, time(0), PRAGUE)
    listed = list(examples_client.list_invoices(start, start))
    assert {i["code"] for i in listed} == {"2015000001"}  # the example's paginator says 3 pages
    invoice = parse_invoice(examples_client.get_invoice("2015000001"))
    assert invoice.code == "2015000001" and invoice.var_symbol == "2021000021"
    assert invoice.items[0].amount is not None and invoice.total_with_vat > 0
    assert {o["code"] for o in examples_client.list_orders(-2)} == {"2017000092"}
    order = parse_order(examples_client.get_order("2017000092"))
    assert order.code == "2017000092" and order.items and order.shipping == "PPL"
    examples_client.set_order_status("2017000092", 26)
    # The spec's example of a stock movement skips unknown products with `errors`: not a success.
    with pytest.raises(ShoptetError, match="unknown-product"):
        examples_client.stock_movement(1, "001-non-exists", 1)
