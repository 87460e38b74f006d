"""The streaming clearinghouse: faust agents over raw-bytes Kafka topics, state in the database.

`handlers` (one per stage), `batch` (a batch through the pure pricing, stored by source
position, in the tables of `clearing.store.schema`), `ledger_link`, `refdata_feed`,
`reconcile`, `statements`, `results`, `config`. The faust app is `clearing.worker`.
"""
