"""400 search queries made from templates (a task, a language, a domain, a
model family), for measuring the HNSW graph's recall on queries that are
not cards (docs/embeddings.md, "Choosing neighbours"):

    python3 eval/bench/ann_queries.py > /tmp/ann/queries.tsv
    hubsearch export --out /tmp/ann --queries /tmp/ann/queries.tsv
    QUERIES=/tmp/ann/query_vectors.f32 cargo run --release -p hubsearch-vectors \
        --example hnsw_build -- /tmp/ann/vectors.f32 30000 2 200 own

They are not judged: only the exact nearest cards of each are compared
with what the graph finds.
"""
import random
import sys
random.seed(7)
tasks=["sentiment analysis","speech recognition","translation","summarization","question answering","named entity recognition","text classification","image classification","object detection","text generation","token classification","fill mask","zero shot classification","image segmentation","text to speech","audio classification","sentence embeddings","paraphrase detection","topic classification","emotion detection","hate speech detection","spam detection","keyword extraction","part of speech tagging","dialogue generation","chatbot","code generation","math word problems","grammar correction","spelling correction","image captioning","visual question answering","table question answering","document layout","ocr","speaker identification","voice activity detection","music generation","protein folding","molecule property prediction","fake news detection","toxic comment classification","intent detection","slot filling","language identification","machine reading comprehension","legal text classification","medical entity extraction","clinical notes","tweet classification","news summarization","poetry generation","lyrics generation","recipe generation","product review rating","query expansion","passage reranking","dense retrieval","semantic search","style transfer","sarcasm detection","stance detection","relation extraction","coreference resolution","event extraction","depth estimation","face recognition","pose estimation","handwriting recognition","time series forecasting"]
langs=["german","french","spanish","arabic","chinese","japanese","korean","hindi","russian","portuguese","italian","dutch","turkish","vietnamese","indonesian","persian","swahili","bengali","urdu","polish","finnish","swedish","greek","hebrew","thai","tamil","ukrainian","czech","romanian","multilingual"]
domains=["biomedical","legal","financial","scientific papers","tweets","reviews","news","code","patents","customer support","chemistry","clinical","e-commerce","movies","music","sports","education","cybersecurity","climate","agriculture"]
models=["bert","roberta","gpt2","t5","bart","distilbert","wav2vec2","vit","electra","xlm-roberta","deberta","marian","pegasus","longformer","whisper","clip","resnet","yolo"]
templ=[lambda:f"{random.choice(langs)} {random.choice(tasks)}",
       lambda:f"{random.choice(tasks)} for {random.choice(domains)}",
       lambda:f"{random.choice(models)} {random.choice(tasks)}",
       lambda:f"{random.choice(tasks)} model in {random.choice(langs)}",
       lambda:f"small fast {random.choice(tasks)}",
       lambda:f"{random.choice(domains)} {random.choice(tasks)} {random.choice(langs)}",
       lambda:f"how to do {random.choice(tasks)} on {random.choice(domains)}"]
seen=set(); out=[]
while len(out)<400:
    q=random.choice(templ)()
    if q in seen: continue
    seen.add(q); out.append(q)
for i, q in enumerate(out):
    sys.stdout.write(f"g{i:03d}\t{q}\n")
