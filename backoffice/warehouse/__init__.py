"""The warehouse: picking lists for the pickers, and transport boxes stocked up by Finish_Transport.

    models.py          tables: transport boxes and their items, picking claims
    picking.py         Shoptet order details → what to pick, grouped by shipping method
    picking_pdf.py     the A4 picking list (fonts/: DejaVu Sans for Czech letters)
    picking_run.py     one run: list → claim → fetch → check → PDF → print → move
    picking_store.py   PickingStore: one claim row per order, so no order is printed twice
    transport.py       Finish_Transport: each received box's items added to the stock exactly once
    box_store.py       TransportBoxStore: boxes created and moved by operators (routes)
    stocking_store.py  BoxStockingStore: the job's per-item bookkeeping, one transaction per step

SQL lives in this domain's `*_store.py` modules, beside its tables (see `backoffice.queue`).
"""
