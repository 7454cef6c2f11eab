"""The pure, IO-free half of the DynamoDB-compatible API.

Owns: DynamoDB's data model and expression language, with no I/O of any kind:

* :mod:`dynamokv.api.errors` -- the DynamoDB error types and their JSON envelope;
* :mod:`dynamokv.api.numbers` -- the Number type (38 digits, exponent range, arithmetic);
* :mod:`dynamokv.api.attributes` -- typed attribute values, wire (DynamoDB JSON) validation,
  item size, key comparison;
* :mod:`dynamokv.api.keycodec` -- an order-preserving byte encoding of key values;
* :mod:`dynamokv.api.expressions` -- tokenizer, parsers and evaluators of condition, filter,
  key-condition, update and projection expressions.

May import: the standard library and :mod:`dynamokv.errors`; never ``dynamokv.runtime`` (the
HTTP server lives elsewhere and imports *this* package, not the other way round).
"""
