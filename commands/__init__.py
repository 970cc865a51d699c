"""The write side: command messages, their handlers and the ports they need."""
