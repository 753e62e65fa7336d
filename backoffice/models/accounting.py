"""Invoices (from Shoptet) and bank statements (Comgate payouts). Filled in by the jobs work."""
