"""Pure logic, no I/O: permissions, segment definitions, mapping, plans, run states, schedules."""
