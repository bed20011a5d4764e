"""Document loaders for RAG frameworks, over ``pagescribe.convert`` with any backend (optional extras).

``pagescribe.integrations.langchain.PagescribeLoader`` (``pip install 'pagescribe[langchain]'``),
``pagescribe.integrations.llamaindex.PagescribeReader`` (``[llamaindex]``) and
``pagescribe.integrations.haystack.PagescribeConverter`` (``[haystack]``): each gives one document per page or per
chunk (``mode="page" | "chunk"``), with the text ``pagescribe convert`` writes and its provenance as metadata.
"""
