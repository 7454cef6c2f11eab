"""The pure, IO-free half of the DynamoDB-compatible API.

Owns: DynamoDB's data model and expression language, with no I/O of any kind:

* :mod:`dynamokv.api.errors` -- the DynamoDB error types and their JSON envelope;
* :mod:`dynamokv.api.numbers` -- the Number type (38 digits, exponent range, arithmetic);
* :mod:`dynamokv.api.attributes` -- typed attribute values, wire (DynamoDB JSON) validation,
  item size, key comparison;
* :mod:`dynamokv.api.layout.keycodec` -- an order-preserving byte encoding of key values;
* :mod:`dynamokv.api.expressions` -- tokenizer, parsers and evaluators of condition, filter,
  key-condition, update and projection expressions.

Beside them, the DynamoDB service itself, in rooms named for what they own:

* :mod:`dynamokv.api.operations` -- the thin operation handlers (items, batches, Query/Scan,
  the control plane) and what they share;
* :mod:`dynamokv.api.transactions` -- TransactWriteItems/TransactGetItems, records and intents;
* :mod:`dynamokv.api.schema` -- the table catalog and the validation of table requests;
* :mod:`dynamokv.api.layout` -- key encoding and the stored bytes of an item;
* :mod:`dynamokv.api.indexes`, :mod:`dynamokv.api.streams`, :mod:`dynamokv.api.maintenance`
  -- secondary indexes, DynamoDB Streams, TTL expiry and item counts;
* :mod:`dynamokv.api.app` and :mod:`dynamokv.api.front` -- the HTTP application.

The pure modules above may import: the standard library and :mod:`dynamokv.errors`; never
``dynamokv.runtime`` (the HTTP server lives elsewhere and imports *this* package, not the other
way round).
"""
