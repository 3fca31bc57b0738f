"""The processes of `tenantry run`: a supervisor, API processes, a worker, and the local services
(PostgreSQL, Temporal, Redis) it starts, stops, and finds again after a crash."""
