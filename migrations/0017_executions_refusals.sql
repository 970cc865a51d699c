-- A run refused by its tenant's budget says until when (NULL: waiting cannot help).
ALTER TABLE executions ADD COLUMN refused_until timestamptz;
