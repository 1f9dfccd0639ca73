-- Curation can keep an example at a lower training weight (curation.feedback.action: downweight):
-- a negative outcome that still teaches something. 1.0 for every example before this column.
ALTER TABLE snapshot_examples ADD COLUMN weight DOUBLE DEFAULT 1.0;
