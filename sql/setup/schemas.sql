-- schemas: make sure the target schemas exist.
-- Creates the silver, gold and compat schemas when missing. Never drops anything:
-- silver holds the persistent surrogate-key maps (keymap_*) that must survive rebuilds.
-- The bronze schema is created by the orchestrator before it loads the raw tables.
CREATE SCHEMA IF NOT EXISTS {{silver}};
CREATE SCHEMA IF NOT EXISTS {{gold}};
CREATE SCHEMA IF NOT EXISTS {{compat}};
