// Paste an image anywhere on a page with the image form: it is sent as a search by image.
document.addEventListener("paste", (event) => {
  const form = document.getElementById("by-image");
  const input = document.getElementById("image-file");
  if (!form || !input) return;
  const file = [...(event.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
  if (!file) return;
  event.preventDefault();
  const files = new DataTransfer();
  files.items.add(new File([file], file.name || "pasted.png", { type: file.type }));
  input.files = files.files;
  form.submit();
});
