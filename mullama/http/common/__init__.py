"""What the dialect packages share: the request model base and its errors in words
(:mod:`.protocol`), and the one path from engine events to a reply (:mod:`.wire`)."""
