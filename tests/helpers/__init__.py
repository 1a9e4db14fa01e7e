"""Shared test helpers: worklist builders, DCMTK clients, servers, response comparison."""
