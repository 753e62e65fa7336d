"""Accounting: Shoptet invoices, Comgate payouts as bank statements, and the controlling report.

    models.py              tables: invoices, invoice items, bank statements and their rows
    shoptet_import.py      one day's Shoptet invoices of a currency: fetch, parse, upsert
    invoice_store.py       InvoiceStore: invoices upserted by code, read back as records
    comgate_import.py      one day's Comgate payouts stored as bank statements, payments matched
    bank_statement_store.py     BankStatementStore: statements stored once, payments matched to invoices
    controlling.py         the controlling report's figures of a business day
    report_store.py        ReportStore: the report's read-only queries
    controlling_output.py  the report rendered (markdown, HTML from templates/, e-mail)

SQL lives in this domain's `*_store.py` modules, beside its tables (see `backoffice.queue`).
"""
