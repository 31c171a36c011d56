"""The typer command-line interface: parse, call one library function, render. Nothing imports it."""
