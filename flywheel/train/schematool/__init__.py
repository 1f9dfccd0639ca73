"""The schema-tool student (kind `schema-tool`, registered in flywheel.train.kinds.schema_tool)."""
