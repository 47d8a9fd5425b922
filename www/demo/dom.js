// Small DOM helpers shared by the page's views: owns element creation (text always as text
// nodes, never parsed as HTML) and copying to the clipboard with visible feedback.

/** `h('button', {class: 'x', onclick}, 'Label', child)`: an element with attributes and children. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

/** A "Copy" button that copies `text()` and says "Copied" for a moment. */
export function copyButton(text) {
  const button = h('button', { type: 'button', class: 'copy-button', title: 'Copy to the clipboard' }, 'Copy');
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text());
      button.textContent = 'Copied';
      button.classList.add('done');
    } catch {
      button.textContent = 'Copy failed';
    }
    setTimeout(() => {
      button.textContent = 'Copy';
      button.classList.remove('done');
    }, 1500);
  });
  return button;
}
