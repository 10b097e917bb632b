"""Quality gate: Great Expectations suites over the deduplicated shards."""
