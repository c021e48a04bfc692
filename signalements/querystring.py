"""Reading query strings the same way in every door."""


def list_values(params, name: str) -> list[str]:
    """A parameter given as `?x=a,b`, `?x=a&x=b` or both, without blanks or repeats.
    Spaces and tabs around a value are dropped (not other characters Python calls
    whitespace: the schema's pattern says which)."""
    values = []
    for item in params.getlist(name):
        for value in item.split(","):
            value = value.strip(" \t")
            if value and value not in values:
                values.append(value)
    return values
