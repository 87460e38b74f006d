"""Clearinghouse for cross-province direct medical-insurance settlement."""
