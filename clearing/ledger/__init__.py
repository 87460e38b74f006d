"""The clearing ledger: results, postings and balances in SQL, periods and their statements,
reconciliation with the provinces, prepayments and their alerts.

Entry points: `store.Ledger` (or `store.record_results` for the stream), `periods` for the
period state machine, `cycle` to close, issue and publish a period (every caller goes through
it). Its tables are in `clearing.store.schema`; its commands in `clearing.ops.ledger_cli`.
"""
