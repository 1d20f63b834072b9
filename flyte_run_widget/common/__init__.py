"""What both sides of the wire share (phases, loopback hosts); loaded everywhere, imports neither side."""
