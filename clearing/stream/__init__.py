"""The streaming clearinghouse: faust agents over raw-bytes Kafka topics, state in the database.

`app` (the faust app and its agents), `handlers` (one per stage), `batch` (a batch through the
pure pricing, stored by source position), `state` (the tables), `ledger_link`, `refdata_feed`,
`publish`, `run`, `workers`, `collect`, `statements`, `results`, `config`, `cli`.
"""
