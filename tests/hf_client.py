"""Drive a running hubsearch with the real huggingface_hub client.

    python3 tests/hf_client.py http://127.0.0.1:PORT

Exits non-zero (with the reason) if list_models does not return what the
fixture hub holds. Run by crates/cli/tests/serve.rs.
"""
import sys

from huggingface_hub import HfApi

endpoint = sys.argv[1]
api = HfApi(endpoint=endpoint)

# search: every model whose id contains the text (as on the Hub).
found = list(api.list_models(search="opus-mt-EN", limit=3))
assert found, "search returned nothing"
assert found[0].id == "Helsinki-NLP/opus-mt-en-de", [m.id for m in found]
assert not list(api.list_models(search="opus mt en de")), "words are not an id substring"
berts = [m.id for m in api.list_models(search="bert", sort="downloads")]
assert berts == ["nlptown/bert-base-multilingual-uncased-sentiment"], berts
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

# filter: tags the model must all carry, as the Hub writes them (library
# names, dataset:/license: tags, language codes, pipeline tags).
def tagged(f):
    return sorted(m.id for m in api.list_models(filter=f, limit=100))
assert tagged("sentence-transformers") == ["sentence-transformers/all-MiniLM-L6-v2"], tagged("sentence-transformers")
assert tagged("dataset:opus") == ["Helsinki-NLP/opus-mt-en-de"], tagged("dataset:opus")
assert tagged(["pytorch", "license:apache-2.0"]) == ["sentence-transformers/all-MiniLM-L6-v2"], tagged(["pytorch", "license:apache-2.0"])
assert tagged(["de", "translation"]) == ["Helsinki-NLP/opus-mt-en-de"], tagged(["de", "translation"])
assert tagged("license:nothing-like-it") == []
m = next(iter(api.list_models(search="opus-mt-en-de")))
assert "dataset:opus" in m.tags and "license:cc-by-4.0" in m.tags and "de" in m.tags, m.tags

info = api.model_info("acme/dutch-asr")
assert info.pipeline_tag == "automatic-speech-recognition", info

# model_info at a revision, repo_exists, and the errors the client raises.
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

assert api.model_info("acme/dutch-asr", revision="main").id == "acme/dutch-asr"
try:
    api.model_info("acme/dutch-asr", revision="v2")
    raise AssertionError("revision v2 should not exist")
except RevisionNotFoundError:
    pass
try:
    api.model_info("no/such-model")
    raise AssertionError("no/such-model should not exist")
except RepositoryNotFoundError:
    pass
assert api.repo_exists("acme/dutch-asr") and not api.repo_exists("no/such-model")

# Sorting by likes is by likes, not downloads (both always descending in
# huggingface_hub 2.x); created_at is never made up.
liked = list(api.list_models(sort="likes", limit=100))
likes = [m.likes for m in liked]
assert likes == sorted(likes, reverse=True), likes
assert [m.id for m in liked] != ids, "likes order is the downloads order"
assert [m.id for m in api.list_models(sort="trending_score", limit=3)] == ids[:3]
assert list(api.list_models(sort="last_modified", limit=1))[0].id == "Helsinki-NLP/opus-mt-en-de"
created = {m.id: m.created_at for m in everything}
assert created["Helsinki-NLP/opus-mt-en-de"] is None, created  # only last_modified is known
assert created["acme/live-model"] is not None, created  # published here: the hub set it

# pipeline_tag filters; gated=True finds nothing (no model is gated here).
asr = {m.id for m in api.list_models(pipeline_tag="automatic-speech-recognition")}
assert asr == {"acme/dutch-asr", "jonatasgrosman/wav2vec2-large-xlsr-53-german"}, asr
assert not list(api.list_models(gated=True))
assert len(list(api.list_models(gated=False, limit=100))) == 8

# expand: the properties the Hub's client asks for, and only those.
wanted = ["downloads", "likes", "pipeline_tag", "createdAt", "lastModified", "tags", "library_name"]
by_expand = list(api.list_models(sort="downloads", limit=3, expand=wanted))
assert [m.id for m in by_expand] == ids[:3], [m.id for m in by_expand]
top = everything[0]
assert by_expand[0].downloads == top.downloads and by_expand[0].likes == top.likes, by_expand[0]
assert by_expand[0].pipeline_tag == top.pipeline_tag and by_expand[0].tags == top.tags, by_expand[0]
assert by_expand[0].library_name == top.library_name, by_expand[0]
only = list(api.list_models(limit=1, expand=["likes"]))[0]
assert only.likes is not None and only.downloads is None and only.tags is None, only

# What hubsearch cannot honour is refused with a 400, not ignored.
for kwargs in [{"expand": ["safetensors"]}, {"num_parameters": "min:1B"}, {"inference": "warm"}]:
    try:
        list(api.list_models(**kwargs))
        raise AssertionError(f"{kwargs} should be refused")
    except HfHubHTTPError as e:
        assert e.response.status_code == 400, (kwargs, e.response.status_code)

# Pagination past several pages: pages of 3 by the Link header, as the
# client's paginate() follows it; behind TLS the link keeps https.
import json
import re
import urllib.request

url, paged, pages = f"{endpoint}/api/models?sort=downloads&limit=3", [], 0
while url:
    with urllib.request.urlopen(url) as r:
        paged += [m["id"] for m in json.load(r)]
        link = r.headers.get("Link") or ""
    pages += 1
    m = re.match(r"<([^>]+)>;\s*rel=\"next\"", link)
    url = m.group(1) if m else None
assert pages == 3 and paged == ids, (pages, paged)
req = urllib.request.Request(f"{endpoint}/api/models?limit=3", headers={"X-Forwarded-Proto": "https"})
with urllib.request.urlopen(req) as r:
    assert r.headers["Link"].startswith("<https://"), r.headers["Link"]
print(f"huggingface_hub list_models OK: {len(ids)} models, first search hit {found[0].id}")
