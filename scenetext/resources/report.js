(function () {
  "use strict";
  // Renders the image cards from the inline JSON block, a page at a time, filtered by text.
  // Every value from the data goes into the page as text or as an attribute, never as markup.
  var PAGE = 48;
  var data = JSON.parse(document.getElementById("card-data").textContent);
  var cards = document.getElementById("cards");
  var filter = document.getElementById("filter");
  var count = document.getElementById("count");
  var pageLabel = document.getElementById("page");
  var prev = document.getElementById("prev");
  var next = document.getElementById("next");
  var state = { q: "", page: 1 };
  var haystacks = data.map(function (rec) {
    return (rec.n + "\n" + rec.s + "\n" + rec.l.map(function (line) { return line[0]; }).join("\n")).toLowerCase();
  });

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function confidenceClass(c) {
    return c >= 0.9 ? "conf hi" : c >= 0.6 ? "conf mid" : "conf lo";
  }

  function card(rec) {
    var article = el("article", "card");
    var link = el("a", "thumb");
    if (rec.a) { link.href = rec.a; link.target = "_blank"; link.rel = "noopener"; }
    if (rec.t) {
      var img = el("img");
      img.loading = "lazy";
      img.decoding = "async";
      img.alt = "annotated " + rec.n;
      img.width = rec.w;
      img.height = rec.h;
      img.src = rec.t;
      link.appendChild(img);
    } else {
      link.appendChild(el("span", "no-thumb", "no annotated image"));
    }
    article.appendChild(link);
    var name = el("h3", "name", rec.n);
    name.title = rec.s;
    article.appendChild(name);
    var n = rec.l.length;
    var meta = (n ? n + (n === 1 ? " line" : " lines") : "no text") +
      (rec.ms === null || rec.ms === undefined ? "" : " · " + Math.round(rec.ms) + " ms");
    article.appendChild(el("p", "meta", meta));
    if (n) {
      var list = el("ol", "lines");
      rec.l.forEach(function (line) {
        var item = el("li");
        item.appendChild(el("span", "text", line[0]));
        item.appendChild(el("span", confidenceClass(line[1]), line[1].toFixed(2)));
        list.appendChild(item);
      });
      article.appendChild(list);
    }
    return article;
  }

  function matching() {
    var q = state.q.trim().toLowerCase();
    var found = [];
    for (var i = 0; i < data.length; i++) {
      if (!q || haystacks[i].indexOf(q) >= 0) { found.push(data[i]); }
    }
    return found;
  }

  function render() {
    var found = matching();
    var pages = Math.max(1, Math.ceil(found.length / PAGE));
    state.page = Math.min(Math.max(1, state.page), pages);
    var shown = found.slice((state.page - 1) * PAGE, state.page * PAGE);
    var fragment = document.createDocumentFragment();
    shown.forEach(function (rec) { fragment.appendChild(card(rec)); });
    cards.replaceChildren(fragment);
    if (!found.length) { cards.appendChild(el("p", "none", data.length ? "No image matches." : "No image outputs.")); }
    count.textContent = found.length === data.length ? data.length + " images" :
      found.length + " of " + data.length + " images match";
    pageLabel.textContent = "page " + state.page + " of " + pages;
    prev.disabled = state.page <= 1;
    next.disabled = state.page >= pages;
    cards.setAttribute("data-page", String(state.page));
    cards.setAttribute("data-pages", String(pages));
    cards.setAttribute("data-matches", String(found.length));
  }

  function readHash() {
    var params = new URLSearchParams(location.hash.slice(1));
    state.q = params.get("q") || "";
    state.page = parseInt(params.get("page") || "1", 10) || 1;
    filter.value = state.q;
  }

  function writeHash() {
    var params = new URLSearchParams();
    if (state.q) { params.set("q", state.q); }
    if (state.page > 1) { params.set("page", String(state.page)); }
    var hash = params.toString();
    try {
      history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
    } catch (e) {
      // Some browsers refuse replaceState on file: pages; the view still works without it.
    }
  }

  function go(page) {
    state.page = page;
    writeHash();
    render();
    document.getElementById("images").scrollIntoView();
  }

  filter.addEventListener("input", function () { state.q = filter.value; state.page = 1; writeHash(); render(); });
  prev.addEventListener("click", function () { go(state.page - 1); });
  next.addEventListener("click", function () { go(state.page + 1); });
  window.addEventListener("hashchange", function () { readHash(); render(); });
  readHash();
  render();
})();
