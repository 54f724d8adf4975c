"""Raw answers of local and hosted models that do not fit the operations schema.

Each case is the raw text a model sent (as message content for JSON schema / JSON mode, or
as the tool call's argument string for function calling) and what the pipeline must make of
it: the fact contents recovered, or ``None`` when the turn must be skipped cleanly after one
repair. The shapes are the ones peers' trackers report from Ollama, vLLM, llama.cpp and
hosted models: code fences, trailing prose, single quotes, trailing commas, truncated JSON,
fields under other names, a missing ``op``, wrong types.
"""

from __future__ import annotations

USER = "I like tea and I live in Paris."
TEA = "The user likes tea."
PARIS = "The user lives in Paris."
_T = '{"op": "ADD", "content": "The user likes tea.", "evidence": "I like tea"}'
_P = '{"op": "ADD", "content": "The user lives in Paris.", "evidence": "I live in Paris"}'

RECOVERED: dict[str, tuple[str, list[str]]] = {
    "fenced_json": (f'```json\n{{"operations": [{_T}]}}\n```', [TEA]),
    "fenced_no_lang": (f'```\n{{"operations": [{_T}]}}\n```', [TEA]),
    "prose_before": (f'Here are the operations:\n{{"operations": [{_T}]}}', [TEA]),
    "prose_after": (f'{{"operations": [{_T}]}}\nLet me know if you need anything else!', [TEA]),
    "prose_both": (f'Sure!\n```json\n{{"operations": [{_T}, {_P}]}}\n```\nDone.', [TEA, PARIS]),
    "single_quotes": ("{'operations': [{'op': 'ADD', 'content': 'The user likes tea.', "
                      "'evidence': 'I like tea'}]}", [TEA]),
    "trailing_comma_item": (f'{{"operations": [{_T},]}}', [TEA]),
    "trailing_comma_object": ('{"operations": [{"op": "ADD", "content": "The user likes tea.", '
                              '"evidence": "I like tea",}]}', [TEA]),
    "python_none_true": ('{"operations": [{"op": "ADD", "content": "The user likes tea.", '
                         '"evidence": "I like tea", "handle": None, "importance": 0.5}]}', [TEA]),
    "unquoted_keys": ('{operations: [{op: "ADD", content: "The user likes tea.", '
                      'evidence: "I like tea"}]}', [TEA]),
    "comments": (f'{{\n  // what to store\n  "operations": [{_T}]\n}}', [TEA]),
    "truncated_after_first": (f'{{"operations": [{_T}, {{"op": "ADD", "content": "The user li',
                              [TEA]),
    "truncated_missing_brackets": (f'{{"operations": [{_T}, {_P}', [TEA, PARIS]),
    "truncated_in_evidence": (f'{{"operations": [{_P}, {{"op": "ADD", "content": '
                              f'"The user likes tea.", "evidence": "I like', [PARIS]),
    "bare_list": (f'[{_T}]', [TEA]),
    "single_op_object": (_T, [TEA]),
    "ops_key": (f'{{"ops": [{_T}]}}', [TEA]),
    "actions_key": (f'{{"actions": [{_T}]}}', [TEA]),
    "memories_key": (f'{{"memories": [{_T}]}}', [TEA]),
    "changes_key": (f'{{"changes": [{_T}, {_P}]}}', [TEA, PARIS]),
    "wrapped_in_schema_name": (f'{{"MemoryOperations": {{"operations": [{_T}]}}}}', [TEA]),
    "operations_as_string": ('{"operations": "[{\\"op\\": \\"ADD\\", \\"content\\": \\"The user '
                             'likes tea.\\", \\"evidence\\": \\"I like tea\\"}]"}', [TEA]),
    "action_instead_of_op": ('{"operations": [{"action": "add", "content": "The user likes tea.",'
                             ' "evidence": "I like tea"}]}', [TEA]),
    "type_instead_of_op": ('{"operations": [{"type": "ADD", "fact": "The user likes tea.", '
                           '"evidence": "I like tea"}]}', [TEA]),
    "operation_create": ('{"operations": [{"operation": "create", "text": "The user likes tea.",'
                         ' "quote": "I like tea"}]}', [TEA]),
    "lowercase_op": ('{"operations": [{"op": "add", "content": "The user likes tea.", '
                     '"evidence": "I like tea"}]}', [TEA]),
    "op_with_spaces": ('{"operations": [{"op": " Add ", "content": "The user likes tea.", '
                       '"evidence": "I like tea"}]}', [TEA]),
    "missing_op": ('{"operations": [{"content": "The user likes tea.", '
                   '"evidence": "I like tea"}]}', [TEA]),
    "fact_field": ('{"operations": [{"op": "ADD", "fact": "The user likes tea.", '
                   '"evidence": "I like tea"}]}', [TEA]),
    "memory_field_text": ('{"operations": [{"op": "ADD", "memory": "The user likes tea.", '
                          '"evidence": "I like tea"}]}', [TEA]),
    "value_field": ('{"operations": [{"op": "ADD", "value": "The user likes tea.", '
                    '"evidence": "I like tea"}]}', [TEA]),
    "importance_string_number": ('{"operations": [{"op": "ADD", "content": "The user likes tea.",'
                                 ' "evidence": "I like tea", "importance": "0.7"}]}', [TEA]),
    "importance_word": ('{"operations": [{"op": "ADD", "content": "The user likes tea.", '
                        '"evidence": "I like tea", "importance": "high"}]}', [TEA]),
    "importance_ten_scale": ('{"operations": [{"op": "ADD", "content": "The user likes tea.", '
                             '"evidence": "I like tea", "importance": 8}]}', [TEA]),
    "category_empty": ('{"operations": [{"op": "ADD", "content": "The user likes tea.", '
                       '"evidence": "I like tea", "category": ""}]}', [TEA]),
    "content_as_list": ('{"operations": [{"op": "ADD", "content": ["The user likes tea."], '
                        '"evidence": "I like tea"}]}', [TEA]),
    "null_operations": ('{"operations": null}', []),
    "empty_operations": ('{"operations": []}', []),
    "extra_fields": ('{"operations": [{"op": "ADD", "content": "The user likes tea.", '
                     '"evidence": "I like tea", "reasoning": "tea is mentioned", "confidence": '
                     '0.9}], "notes": "done"}', [TEA]),
    "think_block": ('<think>The user likes tea, I should add it.</think>\n'
                    f'{{"operations": [{_T}]}}', [TEA]),
    "smart_quotes_evidence": ('{"operations": [{"op": "ADD", "content": "The user likes tea.", '
                              '"evidence": "“I LIKE  tea”"}]}', [TEA]),
    "evidence_alias_quote": ('{"operations": [{"op": "ADD", "content": "The user likes tea.", '
                             '"quote": "I like tea"}]}', [TEA]),
    "none_with_handle_only": ('{"operations": [{"handle": "m1"}]}', []),
    "numeric_handle_none": ('{"operations": [{"op": "NONE", "handle": 1}]}', []),
    "bracket_handle_none": ('{"operations": [{"op": "noop", "handle": "[m1]"}]}', []),
    "json_then_second_json": (f'{{"operations": [{_T}]}}\n{{"operations": []}}', [TEA]),
}

SKIPPED: dict[str, str] = {
    "plain_prose": "The user likes tea and lives in Paris. I'll remember that.",
    "empty": "",
    "refusal": "I'm sorry, I can't help with that.",
    "yaml": "operations:\n  - op: ADD\n    content: The user likes tea.",
    "unknown_op": '{"operations": [{"op": "MERGE", "content": "The user likes tea."}]}',
    "unknown_handle": '{"operations": [{"op": "DELETE", "handle": "m9"}]}',
    "update_without_handle": '{"operations": [{"op": "UPDATE", "content": "The user likes tea.", '
                             '"evidence": "I like tea"}]}',
    "ambiguous_missing_op": '{"operations": [{"handle": "m1", "content": "The user likes tea.", '
                            '"evidence": "I like tea"}]}',
    "operations_number": '{"operations": 42}',
    "item_is_string": '{"operations": ["ADD The user likes tea"]}',
    "bad_date": '{"operations": [{"op": "ADD", "content": "The user likes tea.", '
                '"evidence": "I like tea", "valid_from": "last week"}]}',
    "importance_nonsense": '{"operations": [{"op": "ADD", "content": "The user likes tea.", '
                           '"evidence": "I like tea", "importance": "very"}]}',
}

# Well-formed enough, but every fact is dropped: no evidence, evidence the user never said,
# or the only item cut off. The turn is applied with nothing and ``result.dropped`` says why.
DROPPED: dict[str, str] = {
    "no_evidence": '{"operations": [{"op": "ADD", "content": "The user likes tea."}]}',
    "evidence_not_said": '{"operations": [{"op": "ADD", "content": "The user likes coffee.", '
                         '"evidence": "I like coffee"}]}',
    "truncated_first_item": '{"operations": [{"op": "ADD", "content": "The user li',
}
