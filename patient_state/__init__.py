"""The durable system of record for the state a score depends on.

A patient's earlier stays (visit summaries and index feature records), the encounter
versions ingest has accepted (with where Kafka stored them), and loose resources
waiting for the rest of their stay live here, in PostgreSQL (READMIT_DATABASE_URL; a
SQLite file in the state directory for the embedded run only). Redis holds only what
can be recomputed from this: cached scores, which the scorers refill by themselves
after a flush (``cache_refill``) and ``readmit rescore`` on demand. A Redis flush
therefore changes no later score. Rows past the history horizon are pruned
(``PatientStateStore.prune_history``).
"""
