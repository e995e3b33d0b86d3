"""Typed request bodies per dialect (pydantic), their errors naming the offending parameter."""
