"""Knowledge-graph completion (task ``kg``): filtered head and tail ranking over all entities."""
# ruff: noqa: F401  (imported to register the task)

import fusionrec.tasks.kg.task
