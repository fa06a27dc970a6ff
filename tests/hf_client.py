"""Drive a running hubsearch with the real huggingface_hub client.

    python3 tests/hf_client.py http://127.0.0.1:PORT

Exits non-zero (with the reason) if list_models does not return what the
fixture hub holds. Run by crates/cli/tests/serve.rs.
"""
import sys

from huggingface_hub import HfApi

endpoint = sys.argv[1]
api = HfApi(endpoint=endpoint)

found = list(api.list_models(search="opus mt en de", limit=3))
assert found, "search returned nothing"
assert found[0].id == "Helsinki-NLP/opus-mt-en-de", [m.id for m in found]
assert found[0].pipeline_tag == "translation", found[0]
assert found[0].downloads == 882002, found[0].downloads

# The fixture hub's 7 cards plus the one the test published.
everything = list(api.list_models(sort="downloads", limit=100))
ids = [m.id for m in everything]
assert len(ids) == len(set(ids)) == 8, ids
downloads = [m.downloads for m in everything]
assert downloads == sorted(downloads, reverse=True), downloads

by_author = sorted(m.id for m in api.list_models(author="acme"))
assert by_author == ["acme/dutch-asr", "acme/live-model"], by_author
with_data = list(api.list_models(filter="automatic-speech-recognition", cardData=True))
assert {m.id for m in with_data} == {"acme/dutch-asr", "jonatasgrosman/wav2vec2-large-xlsr-53-german"}, with_data

info = api.model_info("acme/dutch-asr")
assert info.pipeline_tag == "automatic-speech-recognition", info
print(f"huggingface_hub list_models OK: {len(ids)} models, first search hit {found[0].id}")
