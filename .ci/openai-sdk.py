#!/usr/bin/env python3
"""The paper's flow, as a script written for OpenAI's legacy fine-tuning API would run it,
with the official OpenAI Python SDK unchanged, against the project's `serve`.

Usage: openai-sdk.py BASE_URL DATA DECODE
  BASE_URL  the server's /v1 URL
  DATA      the folder `prepare` wrote (train.jsonl, train.chat.jsonl)
  DECODE    the `decode` example's binary, to check that completions decode strictly

Exits non-zero on the first thing that differs from what the API promises."""
import json, subprocess, sys, tempfile, time, pathlib
from openai import OpenAI

base_url, data, decode = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
client = OpenAI(base_url=base_url, api_key="not-needed-locally", max_retries=0)


def wait(job):
    for _ in range(600):
        if job.status in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.5)
        job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded", f"job {job.id}: {job.status} {job.error}"
    events = client.fine_tuning.jobs.list_events(fine_tuning_job_id=job.id, limit=100)
    messages = [e.message for e in events.data]
    assert "The job has successfully completed" in messages, messages
    print(f"{job.id}: {job.status}, {job.fine_tuned_model}, {len(messages)} events")
    return job


def decodes_strictly(text):
    with tempfile.TemporaryDirectory() as d:
        src, out = pathlib.Path(d, "bars.txt"), pathlib.Path(d, "bars.mid")
        src.write_text(text.strip() + "\n")
        run = subprocess.run([decode, str(src), "--out", str(out)], capture_output=True, text=True)
        assert run.returncode == 0, f"does not decode: {text!r}\n{run.stderr}"
        assert out.stat().st_size > 0


# 1. The legacy flow: prompt/completion JSONL, babbage-002, completions with stop and max_tokens.
with open(data / "train.jsonl", "rb") as f:
    upload = client.files.create(file=f, purpose="fine-tune")
assert upload.purpose == "fine-tune" and upload.bytes > 0, upload
assert upload.id in [f.id for f in client.files.list().data]
job = client.fine_tuning.jobs.create(
    training_file=upload.id, model="babbage-002", hyperparameters={"n_epochs": 1}, suffix="sdk"
)
job = wait(job)
example = json.loads((data / "train.jsonl").read_text().splitlines()[0])
completion = client.completions.create(
    model=job.fine_tuned_model, prompt=example["prompt"], max_tokens=200, stop=["<<<"],
    temperature=1.0, seed=5, n=2,
)
assert len(completion.choices) == 2, completion
for choice in completion.choices:
    assert choice.finish_reason in ("stop", "length"), choice
    decodes_strictly(choice.text)
print(f"completions: {len(completion.choices)} choices decode strictly")

# 2. Today's flow: a chat file, a chat model, method=supervised, chat completions.
with open(data / "train.chat.jsonl", "rb") as f:
    chat_upload = client.files.create(file=f, purpose="fine-tune")
chat_job = client.fine_tuning.jobs.create(
    training_file=chat_upload.id, model="gpt-4o-mini-2024-07-18",
    method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1}}},
)
chat_job = wait(chat_job)
messages = json.loads((data / "train.chat.jsonl").read_text().splitlines()[0])["messages"][:2]
reply = client.chat.completions.create(model=chat_job.fine_tuned_model, messages=messages, seed=5)
content = reply.choices[0].message.content
decodes_strictly(content)
print("chat completion decodes strictly")

# 3. Models and file housekeeping.
ids = [m.id for m in client.models.list().data]
assert job.fine_tuned_model in ids and chat_job.fine_tuned_model in ids, ids
assert client.files.content(upload.id).read() == (data / "train.jsonl").read_bytes()
assert client.files.delete(chat_upload.id).deleted
print("the OpenAI Python SDK ran the paper's flow unchanged")
