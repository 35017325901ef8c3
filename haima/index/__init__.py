"""Vector indexes (FAISS), their snapshots on disk, and the query planner."""
