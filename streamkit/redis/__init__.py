"""streamkit over Redis Streams."""
