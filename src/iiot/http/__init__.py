"""HTTP plumbing shared by every route: JSON decoding, body limits, read timeouts."""
