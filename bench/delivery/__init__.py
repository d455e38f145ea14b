"""Delivery benchmark: Clarion vs plain aioapns / aiohttp / firebase-admin loops."""
