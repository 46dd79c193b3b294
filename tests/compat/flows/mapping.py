"""Fan out over files with .map, keeping a shared argument whole with unmapped."""

from headwater import flow, task, unmapped


@task
def count_words(text: str, stopwords: set) -> int:
    return sum(1 for word in text.split() if word not in stopwords)


@flow
def word_counts(texts: list[str]) -> list[int]:
    futures = count_words.map(texts, stopwords=unmapped({"the", "a"}))
    return futures.result()


if __name__ == "__main__":
    print(word_counts(["the cat sat", "a dog ran far"]))
